"""Cost as tables grow: a 1000-run batch, a batch GET of 100 runs, a log tail and a
1000-line log append, with 10k, 100k and 1M rows already stored, over real HTTP.

    .venv/bin/python bench/scale.py [--quick] [--sizes 10000,100000,1000000]

Each size has a server and a database of its own (SQLite, or beside DATABASE_URL's
when it names PostgreSQL), and the sizes take turns request by request, so that all
see the same machine. The rows already stored are written straight into the same
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
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import server
from bench.ingest import COLUMNS, realistic_run

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

    def runs(self, count: int) -> None:
        for at in range(0, count, FILL_CHUNK):
            self._write(
                "traces_run", COLUMNS, stored_runs(at, min(FILL_CHUNK, count - at), self.owner)
            )

    def lines(self, total: int) -> None:
        """``total`` log lines, 1000 to each of the first stored runs."""
        query = f"SELECT id FROM traces_run ORDER BY id LIMIT {total // LINES_PER_RUN}"
        pks = [pk for (pk,) in self.conn.execute(query).fetchall()]
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
        self.conn.close()


class Stand:
    """One size's own server and database, filled to ``size`` rows, and the times
    of the requests it answered."""

    KINDS = ("runs batch", "batch GET", "log tail", "log append")

    def __init__(self, size: int, base: str, token: str, env: dict):
        self.size = size
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Token {token}"}, timeout=120
        )
        self.filler = Filler(env)
        self.times = {kind: [] for kind in self.KINDS}

    def fill(self) -> None:
        start = time.perf_counter()
        self.filler.runs(self.size)
        self.filler.lines(self.size)
        if self.filler.on_pg:
            self.filler.conn.execute("ANALYZE")
        self.fill_seconds = time.perf_counter() - start
        self.run_ids = [
            run_id
            for (run_id,) in self.filler.conn.execute(
                "SELECT run_id FROM traces_run ORDER BY id DESC LIMIT 20000"
            ).fetchall()
        ]
        self.tail_run = self.filler.conn.execute(
            "SELECT run_id FROM traces_run WHERE id = (SELECT max(run_id) FROM setuplogs_logentry)"
        ).fetchone()[0]
        self.http.get("/api/v1/runs/?page_size=1")  # warm the connection and the worker
        self.append_run = new_run(self.http)

    def one_round(self, rng: random.Random) -> None:
        http, times = self.http, self.times
        body = json.dumps({"runs": batch_runs()}).encode()
        times["runs batch"].append(timed(http, "POST", "/api/v1/runs/batch", body, 201))
        body = json.dumps({"resource_type": "runs", "ids": rng.sample(self.run_ids, 100)}).encode()
        times["batch GET"].append(timed(http, "POST", "/api/v1/batch/get", body, 200))
        url = f"/api/v1/runs/{self.tail_run}/setup_logs?tail=50"
        times["log tail"].append(timed(http, "GET", url, None, 200))
        lines = [{"message": f"line {n}", "client_id": uuid.uuid4().hex} for n in range(1000)]
        body = json.dumps({"logs": lines}).encode()
        url = f"/api/v1/runs/{self.append_run}/setup_logs"
        times["log append"].append(timed(http, "POST", url, body, 200))

    def medians(self) -> dict:
        return {kind: statistics.median(spent) * 1000 for kind, spent in self.times.items()}

    def close(self) -> None:
        self.http.close()
        self.filler.close()


@contextmanager
def database_for(size: int):
    """The environment of a size's server: on PostgreSQL a database of its own,
    created beside DATABASE_URL's and dropped afterwards; on SQLite the scratch file
    server() makes."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield {}
        return
    import psycopg

    name = f"batchsvc_scale_{size}"

    def run(sql):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql)

    run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    run(f"CREATE DATABASE {name}")
    try:
        yield {"DATABASE_URL": urlunsplit(urlsplit(url)._replace(path=f"/{name}"))}
    finally:
        run(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


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
    rng = random.Random(1)
    with ExitStack() as stack:
        stands = []
        for size in sizes:
            database = stack.enter_context(database_for(size))
            base, token, env = stack.enter_context(server(extra_env=database))
            stands.append(Stand(size, base, token, env))
            stack.callback(stands[-1].close)
        for stand in stands:
            stand.fill()
        # Round by round, each size in turn: the machine's load drifts over a run, and
        # every size sees the same drift.
        for _ in range(rounds):
            for stand in stands:
                stand.one_round(rng)
        curve = [(stand.size, stand.fill_seconds, stand.medians()) for stand in stands]
        on_pg = stands[0].filler.on_pg
    report(curve, "PostgreSQL" if on_pg else "SQLite", rounds)


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
