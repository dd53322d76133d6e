"""Runs ingestion: batch endpoints vs. the single-run endpoint vs. the database's raw limit.

    .venv/bin/python bench/ingest.py [--batches 20]

On SQLite (default) the raw limit is sqlite3 executemany of the same rows in one
transaction per batch; with DATABASE_URL set to PostgreSQL it is psycopg's binary COPY,
one transaction per batch, taking its turn after each HTTP batch. Both go into a table
with the runs table's DDL.
"""

import argparse
import datetime as dt
import json
import os
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._raw import sqlite_rows_per_second
from bench._server import server

COLUMNS = [
    "event_id",
    "run_id",
    "parent_run_id",
    "agent_name",
    "job_type",
    "product",
    "git_repo",
    "git_branch",
    "git_commit",
    "status",
    "start_time",
    "end_time",
    "metrics_json",
    "context_json",
    "error_summary",
    "owner_id",
    "created_at",
    "updated_at",
]


def realistic_run(n: int) -> dict:
    """About 0.5 KB of JSON, like an agent's run."""
    return {
        "event_id": str(uuid.uuid4()),
        "run_id": f"run-{uuid.uuid4().hex}",
        "parent_run_id": f"parent-{n // 10}",
        "agent_name": "launch.orchestrator",
        "job_type": "launch",
        "product": "words",
        "git_repo": "https://example.com/org/repo.git",
        "git_branch": "main",
        "git_commit": "3f2c1e0a9b",
        "status": "success",
        "start_time": "2026-01-28T10:30:00Z",
        "end_time": "2026-01-28T10:31:12Z",
        "metrics_json": {"pages": n, "tokens_in": 1200, "tokens_out": 340, "cost": 0.0123},
        "context_json": {
            "trace_id": uuid.uuid4().hex,
            "span_id": uuid.uuid4().hex[:16],
            "host": "worker-3",
            "tags": ["nightly", "en"],
        },
        "error_summary": None,
    }


SINGLE = "/api/v1/runs/"


def timed(base, token, order, bodies, singles, between=None) -> dict[str, list[float]]:
    """Send ``bodies[i]`` to ``order[i]``, with the single runs spread between the
    batches so that every endpoint sees the same table sizes and the same state of
    a machine whose speed drifts (and ``between()`` called after each batch, for
    the raw limit's turn); return each path's request times."""
    per_gap = -(-len(singles) // len(bodies))
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    times = {path: [] for path in [*order, SINGLE]}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as http:

        def post(path, body):
            start = time.perf_counter()
            response = http.post(path, content=body)
            times[path].append(time.perf_counter() - start)
            assert response.status_code == 201, response.text[:300]

        http.get("/api/v1/runs/?page_size=1")  # warm the connection and the worker
        for i, body in enumerate(bodies):
            post(order[i], body)
            if between is not None:
                between()
            for run in singles[i * per_gap : (i + 1) * per_gap]:
                post(SINGLE, json.dumps(run).encode())
    return times


def raw_sqlite(rows, schema_db: Path) -> float:
    """The same rows into a table with the same columns, constraints and indexes."""
    placeholders = ", ".join("?" * len(COLUMNS))
    sql = f"INSERT INTO traces_run ({', '.join(COLUMNS)}) VALUES ({placeholders})"
    prepared = [[_raw_row(run) for run in batch] for batch in rows]
    return sqlite_rows_per_second(schema_db, ["traces_run"], sql, prepared)


def _raw_row(run, owner=1):
    now = "2026-01-28 10:31:12"
    values = {
        **run,
        "event_id": uuid.UUID(run["event_id"]).hex,
        "owner_id": owner,  # one owner, as the bench's one token
        "created_at": now,
        "updated_at": now,
    }
    values["error_summary"] = run["error_summary"] or ""
    values["metrics_json"] = json.dumps(run["metrics_json"])
    values["context_json"] = json.dumps(run["context_json"])
    return [values.get(c) for c in COLUMNS]


def _binary_row(run, owner):
    """The values of :func:`_raw_row` as the Python objects binary COPY takes."""
    from psycopg.types.json import Jsonb

    values = dict(zip(COLUMNS, _raw_row(run, owner=owner), strict=True))
    values["event_id"] = uuid.UUID(values["event_id"])
    for name in ("start_time", "end_time", "created_at", "updated_at"):
        values[name] = dt.datetime.fromisoformat(values[name]).replace(tzinfo=dt.UTC)
    for name in ("metrics_json", "context_json"):
        values[name] = Jsonb(values[name], dumps=str)  # already JSON text
    return list(values.values())


def empty_runs_table(url) -> None:
    """PostgreSQL: the second pass starts from an empty table, as it does on SQLite."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('traces_run')").fetchone()[0]:
            conn.execute("TRUNCATE traces_run CASCADE")


class CopyTurns:
    """PostgreSQL's raw limit, measured between the endpoints' batches so that both
    see the same machine (its load drifts over a run): after each HTTP batch, psycopg
    COPYs a batch of as many rows, in one transaction, into a table with traces_run's
    DDL (its columns, indexes, constraints and foreign key: what the endpoints insert
    into), in binary, the fastest COPY; and, for comparison with earlier figures, in
    text into the unindexed table those were measured against. Both tables start
    empty with each pass, as traces_run does."""

    TABLES = {
        "same DDL, binary": ("bench_raw_run", True),
        "unindexed table, text": ("bench_raw_old", False),
    }

    def __init__(self, url, batches):
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        owner = self.conn.execute("SELECT min(id) FROM auth_user").fetchone()[0]
        self.batches = {}
        for name, (table, binary) in self.TABLES.items():
            self.conn.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in SAME_DDL if binary else UNINDEXED_DDL:
                self.conn.execute(statement.format(table=table))
            row = _binary_row if binary else _raw_row
            self.batches[name] = iter([[row(run, owner=owner) for run in b] for b in batches])
        self.times = {name: [] for name in self.TABLES}

    def __call__(self):
        for name, (table, binary) in self.TABLES.items():
            self.times[name].append(_copy(self.conn, table, next(self.batches[name]), binary))

    def close(self):
        for table, _ in self.TABLES.values():
            self.conn.execute(f"DROP TABLE {table}")
        self.conn.close()


SAME_DDL = [
    "CREATE TABLE {table} (LIKE traces_run INCLUDING ALL)",
    "ALTER TABLE {table} ADD FOREIGN KEY (owner_id) REFERENCES auth_user (id) "
    "DEFERRABLE INITIALLY DEFERRED",
]
UNINDEXED_DDL = [
    "CREATE TABLE {table} (id bigserial PRIMARY KEY, owner_id bigint, event_id "
    "uuid, run_id varchar(255), parent_run_id text, agent_name text, job_type text, "
    "product text, git_repo text, git_branch text, git_commit text, status text, "
    "start_time timestamptz, end_time timestamptz, metrics_json jsonb, context_json "
    "jsonb, error_summary text, created_at timestamptz, updated_at timestamptz, "
    "UNIQUE (owner_id, event_id), UNIQUE (owner_id, run_id))"
]


def _copy(conn, table, batch, binary: bool) -> float:
    """Seconds to COPY one batch in its own transaction."""
    columns = ", ".join(COLUMNS)
    sql = f"COPY {table} ({columns}) FROM STDIN" + (" (FORMAT BINARY)" if binary else "")
    types = [
        *("uuid", *["text"] * 9, "timestamptz", "timestamptz", "jsonb", "jsonb", "text"),
        *("int4", "timestamptz", "timestamptz"),
    ]
    start = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur, cur.copy(sql) as copy:
        if binary:
            copy.set_types(types)
        for row in batch:
            copy.write_row(row)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--batches", type=int, default=20, help="1000-run batches per mode in each pass"
    )
    parser.add_argument("--singles", type=int, default=500, help="runs sent one per request")
    args = parser.parse_args()
    n = iter(range(10**9))
    make = lambda count: [[realistic_run(next(n)) for _ in range(1000)] for _ in range(count)]  # noqa: E731
    database = os.environ.get("DATABASE_URL", "")
    on_pg = database.startswith("postgres")

    # Two passes on fresh databases, the endpoints taking turns, the second pass in
    # the other order: the WAL checkpoint that comes every few batches (100 ms, three
    # times a batch) falls on one endpoint's turn in the first pass and on the
    # other's in the second. (In one pass, whichever endpoint the checkpoints hit
    # looked 15 % slower.)
    paths = ["/api/v1/runs/batch", "/api/v1/runs/batch-transactional"]
    times = {path: [] for path in [*paths, SINGLE]}
    copy_times = {}
    for turns in (paths, paths[::-1]):
        order = turns * args.batches
        bodies = [json.dumps({"runs": batch}).encode() for batch in make(len(order))]
        singles = [realistic_run(next(n)) for _ in range(args.singles // 2)]
        if on_pg:
            empty_runs_table(database)
        with server() as (base, token, env):
            copies = CopyTurns(database, make(len(order))) if on_pg else None
            for path, spent in timed(base, token, order, bodies, singles, copies).items():
                times[path] += spent
            if copies is not None:
                copies.close()
                for name, spent in copies.times.items():
                    copy_times.setdefault(name, []).extend(spent)
            # The same number of rows as one pass stored, into an empty table:
            # inserts slow down as the table and its indexes grow.
            if not on_pg and turns is paths:
                raw = raw_sqlite(make(len(order)), Path(env["VAR_DIR"]) / "db.sqlite3")
    if on_pg:
        rates = {name: 1000 * len(spent) / sum(spent) for name, spent in copy_times.items()}
        raw = rates["same DDL, binary"]
    lenient, atomic = (1000 * len(times[p]) / sum(times[p]) for p in paths)
    single = len(times[SINGLE]) / sum(times[SINGLE])
    limit_name = "psycopg binary COPY, same DDL" if on_pg else "sqlite3 executemany"

    print(
        f"database: {'PostgreSQL' if on_pg else 'SQLite'}; "
        f"{args.batches} batches of 1000 runs per mode in each of 2 passes, taking turns, "
        f"{args.singles} single runs spread between them"
    )
    print(f"  batch (lenient)        {lenient:10,.0f} runs/s   {lenient / raw:5.2f} x raw limit")
    print(f"  batch (transactional)  {atomic:10,.0f} runs/s   {atomic / raw:5.2f} x raw limit")
    print(f"  single-run endpoint    {single:10,.0f} runs/s")
    print(f"  raw limit ({limit_name}) {raw:10,.0f} runs/s")
    if on_pg:
        old = rates["unindexed table, text"]
        print(
            f"  (text COPY into the unindexed table of earlier figures: {old:,.0f} runs/s; "
            f"lenient batch {lenient / old:.2f} x that)"
        )
    print(f"  lenient batch / single endpoint: {lenient / single:,.0f} x")


if __name__ == "__main__":
    main()
