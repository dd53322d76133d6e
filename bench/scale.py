"""Cost as tables grow: a 1000-run batch, a batch GET of 100 runs, a log tail and a
1000-line log append, with 10k, 100k and 1M rows already stored, over real HTTP.

    .venv/bin/python bench/scale.py [--quick] [--sizes 10000,100000,1000000]

SQLite unless DATABASE_URL names a PostgreSQL database (whose runs and log lines
are emptied first). The rows already stored are written straight into the same
tables (sqlite3 executemany, psycopg COPY), not through HTTP: as many runs as the
size, and as many log lines, 1000 to a run. Random event_ids and run_ids, as
agents send them.
"""

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import server
from bench.ingest import COLUMNS, empty_runs_table, realistic_run

ORDERED = False  # --ordered-ids: time-ordered event_ids and run_ids instead of random ones


def new_ids() -> tuple[uuid.UUID, str]:
    """An event_id and a run_id: random (uuid4), or with ``--ordered-ids`` led by
    the time in nanoseconds (like a UUIDv7, and a run_id naming its date), so
    that new entries land at the right edge of the unique indexes."""
    if not ORDERED:
        return uuid.uuid4(), f"run-{uuid.uuid4().hex}"
    now = time.time_ns()
    event_id = uuid.UUID(int=(now << 64) | random.getrandbits(64))
    return event_id, f"run-{now:016x}-{random.getrandbits(64):016x}"


def batch_runs() -> list[dict]:
    runs = [realistic_run(n) for n in range(1000)]
    for run in runs:
        event_id, run["run_id"] = new_ids()
        run["event_id"] = str(event_id)
    return runs


LOG_COLUMNS = ["run_id", "seq", "timestamp", "level", "message", "client_id", "received_at"]
LINES_PER_RUN = 1000
FILL_CHUNK = 50_000


def stored_runs(start: int, count: int, owner: int):
    """Rows of ``traces_run`` as COLUMNS orders them, as text (what Django stores on
    SQLite, and what text COPY takes)."""
    now = "2026-01-28 10:31:12"
    for n in range(start, start + count):
        event_id, run_id = new_ids()
        yield (
            event_id.hex, run_id, f"parent-{n // 10}",
            "launch.orchestrator", "launch", "words", "https://example.com/org/repo.git",
            "main", "3f2c1e0a9b", "success", now, now,
            f'{{"pages": {n}, "tokens_in": 1200}}', '{"host": "worker-3"}', "", owner, now, now,
        )  # fmt: skip


def stored_lines(run_pk: int):
    moment = "2026-01-28 10:30:00"
    for seq in range(1, LINES_PER_RUN + 1):
        yield (
            run_pk,
            seq,
            moment,
            "info",
            f"step {seq}: doing something",
            uuid.uuid4().hex,
            moment,
        )


class Filler:
    """Writes rows straight into the service's tables."""

    def __init__(self, env):
        self.url = env.get("DATABASE_URL", "")
        self.on_pg = self.url.startswith("postgres")
        if self.on_pg:
            import psycopg

            self.conn = psycopg.connect(self.url, autocommit=True)
        else:
            self.conn = sqlite3.connect(Path(env["VAR_DIR"]) / "db.sqlite3", isolation_level=None)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.owner = self._one("SELECT min(id) FROM auth_user")

    def _one(self, sql):
        return self.conn.execute(sql).fetchone()[0]

    def runs(self, start: int, count: int) -> None:
        for at in range(start, start + count, FILL_CHUNK):
            rows = stored_runs(at, min(FILL_CHUNK, start + count - at), self.owner)
            self._write("traces_run", COLUMNS, rows)

    def lines(self, total: int) -> None:
        """Give stored runs without lines theirs, until the table holds ``total``."""
        runs = (total - self._one("SELECT count(*) FROM setuplogs_logentry")) // LINES_PER_RUN
        first = self._one("SELECT coalesce(max(run_id), 0) FROM setuplogs_logentry")
        pks = [
            pk
            for (pk,) in self.conn.execute(
                f"SELECT id FROM traces_run WHERE id > {first} ORDER BY id LIMIT {runs}"
            ).fetchall()
        ]
        for at in range(0, len(pks), FILL_CHUNK // LINES_PER_RUN):
            chunk = pks[at : at + FILL_CHUNK // LINES_PER_RUN]
            rows = [line for pk in chunk for line in stored_lines(pk)]
            self._write("setuplogs_logentry", LOG_COLUMNS, rows)

    def _write(self, table, columns, rows) -> None:
        names = ", ".join(columns)
        if not self.on_pg:
            marks = ", ".join("?" * len(columns))
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
            self.conn.execute("COMMIT")
            return
        with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def close(self):
        if self.on_pg:
            self.conn.execute("ANALYZE traces_run")
            self.conn.execute("ANALYZE setuplogs_logentry")
        self.conn.close()


def measure(http: httpx.Client, rng: random.Random, filler: Filler, rounds: int) -> dict:
    """Median milliseconds of each kind of request, taking turns."""
    run_ids = [
        run_id
        for (run_id,) in filler.conn.execute(
            "SELECT run_id FROM traces_run ORDER BY id DESC LIMIT 20000"
        ).fetchall()
    ]
    tail_run = filler.conn.execute(
        "SELECT run_id FROM traces_run WHERE id = (SELECT max(run_id) FROM setuplogs_logentry)"
    ).fetchone()[0]
    append_run = new_run(http)
    times = {"runs batch": [], "batch GET": [], "log tail": [], "log append": []}
    for _ in range(rounds):
        body = json.dumps({"runs": batch_runs()}).encode()
        times["runs batch"].append(timed(http, "POST", "/api/v1/runs/batch", body, 201))
        body = json.dumps({"resource_type": "runs", "ids": rng.sample(run_ids, 100)}).encode()
        times["batch GET"].append(timed(http, "POST", "/api/v1/batch/get", body, 200))
        url = f"/api/v1/runs/{tail_run}/setup_logs?tail=50"
        times["log tail"].append(timed(http, "GET", url, None, 200))
        lines = [{"message": f"line {n}", "client_id": uuid.uuid4().hex} for n in range(1000)]
        body = json.dumps({"logs": lines}).encode()
        url = f"/api/v1/runs/{append_run}/setup_logs"
        times["log append"].append(timed(http, "POST", url, body, 200))
    return {kind: statistics.median(spent) * 1000 for kind, spent in times.items()}


def new_run(http: httpx.Client) -> str:
    run = realistic_run(0)
    response = http.post("/api/v1/runs/batch", json={"runs": [run]})
    assert response.status_code == 201, response.text[:300]
    return run["run_id"]


def timed(http, method, url, body, status) -> float:
    headers = {"Content-Type": "application/json"} if body else {}
    start = time.perf_counter()
    response = http.request(method, url, content=body, headers=headers)
    spent = time.perf_counter() - start
    assert response.status_code == status, response.text[:300]
    return spent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k rows, 5 rounds")
    parser.add_argument("--sizes", help="rows stored at each step, comma-separated")
    parser.add_argument("--rounds", type=int, help="requests of each kind per size")
    parser.add_argument(
        "--ordered-ids", action="store_true", help="time-ordered event_ids and run_ids"
    )
    args = parser.parse_args()
    global ORDERED
    ORDERED = args.ordered_ids
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    if args.sizes:
        sizes = [int(size) for size in args.sizes.split(",")]
    rounds = args.rounds or (5 if args.quick else 9)
    database = os.environ.get("DATABASE_URL", "")
    if database.startswith("postgres"):
        empty_runs_table(database)
    rng = random.Random(1)
    curve = []
    with server() as (base, token, env):
        filler = Filler(env)
        headers = {"Authorization": f"Token {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
            http.get("/api/v1/runs/?page_size=1")  # warm the connection and the worker
            stored = 0
            for size in sizes:
                start = time.perf_counter()
                filler.runs(stored, size - stored)
                filler.lines(size)
                fill = time.perf_counter() - start
                stored = size
                if filler.on_pg:
                    filler.conn.execute("ANALYZE")
                curve.append((size, fill, measure(http, rng, filler, rounds)))
                stored += rounds * 1000  # the batches measured stored runs too
        filler.close()
    report(curve, "PostgreSQL" if filler.on_pg else "SQLite", rounds)


def report(curve, database: str, rounds: int) -> None:
    kinds = list(curve[0][2])
    ids = "time-ordered" if ORDERED else "random"
    load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    print(
        f"cost as tables grow: {database}, {ids} ids, gunicorn (2 workers), medians of "
        f"{rounds} requests per size; {load}"
    )
    print(f"  {'runs stored':>12} {'(fill s)':>9} " + " ".join(f"{k:>12}" for k in kinds))
    for size, fill, times in curve:
        cells = " ".join(f"{times[k]:9.1f} ms" for k in kinds)
        print(f"  {size:12,} {fill:9.1f} {cells}")
    (small, _, first), (large, _, last) = curve[0], curve[-1]
    ratios = ", ".join(f"{k} {last[k] / first[k]:.2f} x" for k in kinds)
    print(f"  at {large:,} vs {small:,} runs stored (as many log lines): {ratios}")


if __name__ == "__main__":
    main()
