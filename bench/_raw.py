"""What SQLite alone can do: the same rows into tables with the same DDL, with
sqlite3's executemany, one transaction per batch."""

import sqlite3
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path


def sqlite_rows_per_second(
    schema_db: Path,
    tables: Sequence[str],
    sql: str,
    batches: Sequence[Sequence[tuple]],
    setup: Sequence[tuple[str, tuple]] = (),
) -> float:
    """Copy ``tables``' DDL from ``schema_db`` into a scratch database, run ``setup``
    (untimed), then time ``sql`` over each batch in its own transaction."""
    source = sqlite3.connect(schema_db)
    marks = ", ".join("?" * len(tables))
    ddl = [
        statement
        for (statement,) in source.execute(
            f"SELECT sql FROM sqlite_master WHERE tbl_name IN ({marks}) AND sql IS NOT NULL "
            "ORDER BY type = 'index'",
            list(tables),
        )
    ]
    source.close()
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "raw.sqlite3", isolation_level=None)
        db.executescript(_server_pragmas())
        for statement in ddl:
            db.execute(statement)
        for statement, params in setup:
            db.execute(statement, params)
        start = time.perf_counter()
        for batch in batches:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(sql, batch)
            db.execute("COMMIT")
        elapsed = time.perf_counter() - start
        db.close()
    return sum(len(batch) for batch in batches) / elapsed


def _server_pragmas() -> str:
    """The PRAGMAs the service's own SQLite connections run (WAL, synchronous,
    checkpoint interval), so that the limit is measured on equal terms."""
    import os

    os.environ.setdefault("SECRET_KEY", "bench")
    from batchsvc import settings

    return settings.DATABASES["default"]["OPTIONS"]["init_command"]
