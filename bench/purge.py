"""Purge while runs keep arriving: the p99 latency of 1000-run batches while
``manage.py purge`` deletes old runs and their log lines, against the p99 without it.

    .venv/bin/python bench/purge.py [--quick] [--runs N] [--databases sqlite,postgres]

A fresh server and database for each database: SQLite, and PostgreSQL at
127.0.0.1:5432 (user postgres) when it answers, in a database of this script's own,
dropped afterwards. The old runs (and 5 log lines each) are written straight into
the tables, started long ago; then one client sends a 1000-run batch every half
second: first without a purge, then while ``purge --runs-days 30`` runs, then once
more without. The ratio compares the p99 during the purge with the worse of the two
p99s without it.
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import PYTHON, ROOT, server
from bench.ingest import COLUMNS, realistic_run
from bench.scale import Filler, stored_runs

POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"
DATABASE = "batchsvc_bench_purge"
LOG_COLUMNS = ["run_id", "seq", "timestamp", "level", "message", "client_id", "received_at"]
FILL_CHUNK = 50_000


def fill(filler: Filler, runs: int, lines_per_run: int) -> None:
    """``runs`` runs started long ago, then ``lines_per_run`` log lines each."""
    for at in range(0, runs, FILL_CHUNK):
        count = min(FILL_CHUNK, runs - at)
        filler._write("traces_run", COLUMNS, stored_runs(at, count, filler.owner))
    moment = "2026-01-28 10:30:00"
    pks = [pk for (pk,) in filler.conn.execute("SELECT id FROM traces_run ORDER BY id")]
    for at in range(0, len(pks), FILL_CHUNK // lines_per_run):
        rows = [
            (pk, seq, moment, "info", f"step {seq}: doing something", "", moment)
            for pk in pks[at : at + FILL_CHUNK // lines_per_run]
            for seq in range(1, lines_per_run + 1)
        ]
        filler._write("setuplogs_logentry", LOG_COLUMNS, rows)
    if filler.on_pg:
        filler.conn.execute("ANALYZE")


class Ingest:
    """One client sending a 1000-run batch every ``interval`` seconds; the latencies."""

    def __init__(self, base: str, token: str, size: int, interval: float):
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Token {token}"}, timeout=120
        )
        self.size, self.interval = size, interval
        self.n = 0

    def one(self) -> float:
        runs = [realistic_run(self.n * self.size + i) for i in range(self.size)]
        self.n += 1
        start = time.perf_counter()
        response = self.http.post("/api/v1/runs/batch", json={"runs": runs})
        spent = time.perf_counter() - start
        assert response.status_code == 201, response.text[:300]
        return spent

    def until(self, done) -> list[float]:
        times = []
        while not done(len(times)):
            started = time.perf_counter()
            times.append(self.one())
            time.sleep(max(0.0, self.interval - (time.perf_counter() - started)))
        return times


def p99(times: list[float]) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[98] * 1000


def run_purge(env: dict) -> tuple[subprocess.Popen, list[str]]:
    output: list[str] = []
    proc = subprocess.Popen(
        [PYTHON, "manage.py", "purge", "--runs-days", "30"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True).start()
    return proc, output


@contextmanager
def database(kind: str):
    if kind == "sqlite":
        yield {}
        return
    import psycopg

    def run(sql):
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(sql)

    run(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    run(f"CREATE DATABASE {DATABASE}")
    try:
        yield {"DATABASE_URL": urlunsplit(urlsplit(POSTGRES)._replace(path=f"/{DATABASE}"))}
    finally:
        run(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def postgres_answers() -> bool:
    try:
        import psycopg

        psycopg.connect(POSTGRES, connect_timeout=2).close()
        return True
    except Exception:
        return False


def bench(kind: str, runs: int, lines: int, baseline: int) -> None:
    with database(kind) as extra, server(extra_env=extra) as (base, token, env):
        filler = Filler(env)
        started = time.perf_counter()
        fill(filler, runs, lines)
        filled = time.perf_counter() - started
        filler.close()
        ingest = Ingest(base, token, size=1000, interval=0.5)
        ingest.until(lambda n: n >= 5)  # warm up
        before = ingest.until(lambda n: n >= baseline)
        proc, output = run_purge(env)
        started = time.perf_counter()
        during = ingest.until(lambda n: proc.poll() is not None)
        purged = time.perf_counter() - started
        assert proc.wait() == 0, "the purge failed"
        after = ingest.until(lambda n: n >= baseline)
    without = max(p99(before), p99(after))
    load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    print(f"purge while runs arrive: {kind}, {runs:,} runs and {runs * lines:,} log lines; {load}")
    print(f"  filled in {filled:.0f} s; purged in {purged:.0f} s: {output[-1].strip()}")
    print(
        f"  1000-run batch every 0.5 s, p99: {p99(before):.0f} ms before, "
        f"{p99(during):.0f} ms during the purge ({len(during)} batches), "
        f"{p99(after):.0f} ms after; median {statistics.median(before) * 1000:.0f} / "
        f"{statistics.median(during) * 1000:.0f} / {statistics.median(after) * 1000:.0f} ms"
    )
    print(f"  p99 during the purge vs without: {p99(during) / without:.2f} x (goal: <= 2 x)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 runs, 500,000 lines")
    parser.add_argument("--runs", type=int, help="old runs to purge (default: 1,000,000)")
    parser.add_argument("--lines-per-run", type=int, default=5)
    parser.add_argument("--databases", default="sqlite,postgres")
    args = parser.parse_args()
    runs = args.runs or (100_000 if args.quick else 1_000_000)
    baseline = 60 if args.quick else 120
    for kind in args.databases.split(","):
        if kind == "postgres" and not postgres_answers():
            print(f"purge while runs arrive: PostgreSQL at {POSTGRES} does not answer; skipped")
            continue
        bench(kind, runs, args.lines_per_run, baseline)


if __name__ == "__main__":
    main()
