"""Setup logs: a job logging 1,000 lines through LogBatcher vs. one request per line,
and the batch append endpoint's throughput with 1000-line batches.

    .venv/bin/python bench/logs.py [--lines 1000] [--batches 30]

Everything runs against gunicorn on a scratch database (SQLite unless DATABASE_URL
says otherwise), over real HTTP.
"""

import argparse
import datetime as dt
import itertools
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from batchsvc_client import Client, LogBatcher

from bench._raw import sqlite_rows_per_second
from bench._server import server

LEVELS = ["info"] * 8 + ["debug", "warning"]


class CountingTransport(httpx.HTTPTransport):
    def __init__(self):
        super().__init__()
        self.requests = 0

    def handle_request(self, request):
        self.requests += 1
        return super().handle_request(request)


def message(n: int) -> str:
    """About 80 bytes, like a line of build output."""
    return f"[step {n // 50}] compiling module_{n:05d}.py ({n * 37 % 900} ms, cache miss)"


def create_run(base: str, token: str) -> str:
    run_id = f"bench-{uuid.uuid4().hex[:12]}"
    run = {
        "event_id": str(uuid.uuid4()),
        "run_id": run_id,
        "agent_name": "bench",
        "job_type": "bench",
        "start_time": "2026-01-28T10:30:00Z",
    }
    httpx.post(f"{base}/api/v1/runs/", json=run, headers={"Authorization": f"Token {token}"})
    return run_id


def job_with_batcher(base, token, lines, work=0.0) -> tuple[int, float]:
    """(requests, seconds) for a job logging ``lines`` lines, close() included,
    doing ``work`` seconds of (sleeping) work before each line."""
    transport = CountingTransport()
    run_id = create_run(base, token)
    with Client(base, token, transport=transport) as client:
        start = time.perf_counter()
        with LogBatcher(client, run_id) as batcher:
            for n in range(lines):
                if work:
                    time.sleep(work)
                batcher.add(LEVELS[n % 10], message(n))
        elapsed = time.perf_counter() - start
        assert batcher.stats["lines_sent"] == lines, batcher.stats
    return transport.requests, elapsed


def job_one_request_per_line(base, token, lines, work=0.0) -> tuple[int, float]:
    transport = CountingTransport()
    run_id = create_run(base, token)
    with Client(base, token, transport=transport) as client:
        start = time.perf_counter()
        for n in range(lines):
            if work:
                time.sleep(work)
            client.append_log_line(
                run_id,
                {"level": LEVELS[n % 10], "message": message(n), "client_id": uuid.uuid4().hex},
            )
        elapsed = time.perf_counter() - start
    return transport.requests, elapsed


def job_without_logs(lines, work) -> float:
    start = time.perf_counter()
    for _ in range(lines):
        time.sleep(work)
    return time.perf_counter() - start


def batch_bodies(count: int) -> list[bytes]:
    now = "2026-01-28T10:30:00.123456+00:00"
    return [
        json.dumps(
            {
                "logs": [
                    {
                        "timestamp": now,
                        "level": LEVELS[n % 10],
                        "message": message(n),
                        "client_id": uuid.uuid4().hex,
                    }
                    for n in range(1000)
                ]
            }
        ).encode()
        for _ in range(count)
    ]


def append_rate(base, token, bodies, database="") -> tuple[float, float, float | None]:
    """Lines per second through POST .../setup_logs, one client sending batches back
    to back: per second of wall time, and per second of the web workers' CPU time
    (which other load on the machine does not change much). On PostgreSQL, also the
    rate of psycopg's binary COPY of the same lines into a table with the log table's
    DDL, one batch after each request (so both see the same machine)."""
    run_id = create_run(base, token)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    copies = LogCopyTurns(database, run_id, bodies) if database.startswith("postgres") else None
    spent = 0.0
    with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
        url = f"/api/v1/runs/{run_id}/setup_logs"
        http.get(url)  # warm the worker
        cpu = server_cpu_seconds(base)
        for body in bodies:
            start = time.perf_counter()
            response = http.post(url, content=body)
            spent += time.perf_counter() - start
            assert response.json()["logs_added"] == 1000, response.text[:300]
            if copies is not None:
                copies()
        cpu = server_cpu_seconds(base) - cpu
    lines = len(bodies) * 1000
    copy_rate = copies.close() if copies is not None else None
    return lines / spent, lines / cpu, copy_rate


class LogCopyTurns:
    """The same lines COPYed (binary, one transaction per batch) into a table with
    setuplogs_logentry's DDL and foreign key, numbered for the same run."""

    def __init__(self, url, run_id, bodies):
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        (run,) = self.conn.execute(
            "SELECT id FROM traces_run WHERE run_id = %s", [run_id]
        ).fetchone()
        self.conn.execute("DROP TABLE IF EXISTS bench_raw_log")
        self.conn.execute("CREATE TABLE bench_raw_log (LIKE setuplogs_logentry INCLUDING ALL)")
        self.conn.execute(
            "ALTER TABLE bench_raw_log ADD FOREIGN KEY (run_id) REFERENCES traces_run (id) "
            "DEFERRABLE INITIALLY DEFERRED"
        )
        now = dt.datetime.now(dt.UTC)
        seqs = itertools.count(1)
        self.batches = iter(
            [
                [
                    (run, next(seqs), dt.datetime.fromisoformat(line["timestamp"]),
                     line["level"], line["message"], line["client_id"], now)
                    for line in json.loads(body)["logs"]
                ]
                for body in bodies
            ]
        )  # fmt: skip
        self.spent, self.lines = 0.0, 0

    def __call__(self):
        batch = next(self.batches)
        columns = "run_id, seq, timestamp, level, message, client_id, received_at"
        sql = f"COPY bench_raw_log ({columns}) FROM STDIN (FORMAT BINARY)"
        types = ["int8", "int8", "timestamptz", "text", "text", "text", "timestamptz"]
        start = time.perf_counter()
        with self.conn.transaction(), self.conn.cursor() as cur, cur.copy(sql) as copy:
            copy.set_types(types)
            for row in batch:
                copy.write_row(row)
        self.spent += time.perf_counter() - start
        self.lines += len(batch)

    def close(self) -> float:
        self.conn.execute("DROP TABLE bench_raw_log")
        self.conn.close()
        return self.lines / self.spent


def server_cpu_seconds(base: str) -> float:
    """User + system CPU time of the gunicorn processes serving ``base``, from /proc."""
    bind = base.removeprefix("http://").encode()
    ticks = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if bind not in (proc / "cmdline").read_bytes():
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone, or not ours to read
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def raw_sqlite_rate(bodies, schema_db: Path) -> float:
    """The same rows into the same tables with sqlite3's executemany, one
    transaction per 1000 lines: what the database alone can do."""
    columns = "run_id, seq, timestamp, level, message, client_id, received_at"
    sql = f"INSERT INTO setuplogs_logentry ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    now = "2026-01-28 10:30:00.123456"
    seqs = itertools.count(1)
    batches = [
        [
            (1, next(seqs), now, line["level"], line["message"], line["client_id"], now)
            for line in json.loads(body)["logs"]
        ]
        for body in bodies
    ]
    run = (
        "INSERT INTO traces_run (id, event_id, run_id, parent_run_id, agent_name, job_type, "
        "product, git_repo, git_branch, git_commit, status, start_time, error_summary, "
        "created_at, updated_at) VALUES (1, 'x', 'r', '', 'a', 'j', '', '', '', '', "
        "'running', ?, '', ?, ?)"
    )
    tables = ["traces_run", "setuplogs_logentry"]
    return sqlite_rows_per_second(schema_db, tables, sql, batches, setup=[(run, (now,) * 3)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1000, help="lines the job logs")
    parser.add_argument("--work-ms", type=float, default=1.0, help="work per line, second job")
    parser.add_argument("--batches", type=int, default=20, help="1000-line batches per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are printed")
    args = parser.parse_args()
    work = args.work_ms / 1000

    burst = {"batcher": [], "single": []}
    paced = {"batcher": [], "single": [], "none": []}
    with server() as (base, token, env):
        on_pg = env.get("DATABASE_URL", "").startswith("postgres")
        job_one_request_per_line(base, token, 20)  # warm both workers
        # Rounds alternate the ways so that all see the same machine load.
        for _ in range(args.rounds):
            burst["batcher"].append(job_with_batcher(base, token, args.lines))
            burst["single"].append(job_one_request_per_line(base, token, args.lines))
        for _ in range(args.rounds):
            paced["batcher"].append(job_with_batcher(base, token, args.lines, work))
            paced["single"].append(job_one_request_per_line(base, token, args.lines, work))
            paced["none"].append((0, job_without_logs(args.lines, work)))
        bodies = batch_bodies(args.batches)
        database = env.get("DATABASE_URL", "")
        rates = [append_rate(base, token, bodies, database) for _ in range(args.rounds)]
        raw = None if on_pg else raw_sqlite_rate(bodies, Path(env["VAR_DIR"]) / "db.sqlite3")

    load = os.getloadavg()[0]
    print(
        f"database: {'PostgreSQL' if on_pg else 'SQLite'}; medians of {args.rounds} rounds; "
        f"load average {load:.1f} on {os.cpu_count()} CPUs"
    )
    print(
        f"a job logging {args.lines:,} lines back to back, then close() "
        "(LogBatcher defaults: 10 lines/request, 2 s):"
    )
    (b_requests, b_time), (s_requests, s_time) = median(burst["batcher"]), median(burst["single"])
    print(f"  one request per line  {s_requests:6,} requests  {s_time:7.3f} s")
    print(f"  LogBatcher            {b_requests:6,} requests  {b_time:7.3f} s")
    print(
        f"  batcher: {1 - b_requests / s_requests:.1%} fewer requests, "
        f"{s_time / b_time:.1f} x less wall time"
    )

    (_, b_time), (_, s_time) = median(paced["batcher"]), median(paced["single"])
    _, none_time = median(paced["none"])
    print(f"a job doing {args.work_ms:g} ms of work before each of its {args.lines:,} lines:")
    print(f"  no logging            {none_time:7.3f} s")
    print(f"  one request per line  {s_time:7.3f} s  (+{s_time - none_time:.3f} s for logging)")
    print(f"  LogBatcher            {b_time:7.3f} s  (+{b_time - none_time:.3f} s for logging)")
    print(
        f"  batcher: {s_time / b_time:.1f} x less wall time, "
        f"{(s_time - none_time) / max(b_time - none_time, 1e-3):.0f} x less time spent logging"
    )

    rate = statistics.median(wall for wall, _, _ in rates)
    per_cpu = statistics.median(cpu for _, cpu, _ in rates)
    print(f"batch append, {args.batches} batches of 1000 lines per round, one client:")
    print(
        f"  POST .../setup_logs   {rate:10,.0f} lines/s "
        f"(best round {max(wall for wall, _, _ in rates):,.0f}); "
        f"{per_cpu:,.0f} lines per second of server CPU"
    )
    if raw is not None:
        print(f"  raw limit (sqlite3 executemany, same table) {raw:10,.0f} lines/s")
        print(f"  endpoint / raw limit: {rate / raw:.2f}")
    else:
        ratios = [wall / copy for wall, _, copy in rates]
        copy = statistics.median(copy for _, _, copy in rates)
        print(f"  raw limit (psycopg binary COPY, same DDL, taking turns) {copy:10,.0f} lines/s")
        print(
            f"  endpoint / raw limit: {statistics.median(ratios):.2f} "
            f"(rounds {', '.join(f'{r:.2f}' for r in ratios)})"
        )


def median(trials: list[tuple[int, float]]) -> tuple[int, float]:
    return (
        int(statistics.median(r for r, _ in trials)),
        statistics.median(t for _, t in trials),
    )


if __name__ == "__main__":
    main()
