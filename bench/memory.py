"""Memory of the web process: a 100,000-row CSV and XLSX upload, and the results
exported as CSV, XLSX and JSON, each request's peak resident memory measured.

    .venv/bin/python bench/memory.py [--rows 100000]

gunicorn with one worker process (one request at a time), on a scratch database
(SQLite unless DATABASE_URL says otherwise). Each request goes to a new worker
(the last one is stopped, gunicorn starts another), whose peak is reset (Linux:
``/proc/<pid>/clear_refs``) just before it; after it, ``VmHWM`` is the request's
peak. The exported batch has every item answered (written straight into the table,
not by a worker) so that each row carries an output.
"""

import argparse
import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from openpyxl import Workbook

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import server


def rows(count: int):
    yield ["question", "chat_id", "url", "lang"]
    for n in range(count):
        chat = f"chat-{n // 10}"
        yield [f"Question number {n}: what is {n} + {n}?", chat, f"https://x.test/p/{n}", "en"]


def csv_file(count: int) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows(count))
    return out.getvalue().encode()


def xlsx_file(count: int) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Questions")
    for row in rows(count):
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def worker_pid(base: str) -> int:
    """The gunicorn worker (the master's only child) serving ``base``."""
    port = base.rsplit(":", 1)[1]
    master = subprocess.check_output(["pgrep", "-f", f"gunicorn.*127.0.0.1:{port}"]).split()[0]
    return int(subprocess.check_output(["pgrep", "-P", master.decode()]).split()[0])


def fresh_worker(http: httpx.Client, base: str, pid: int | None) -> int:
    """Replace the worker (gunicorn's master starts another) so that each request
    is measured from a process that has not grown on an earlier one."""
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        while (new := _child(base)) in (None, pid):
            time.sleep(0.05)
        pid = new
    else:
        pid = _child(base)
    http.get("/api/v1/batches/")  # its imports and its database connection
    return pid


def _child(base: str) -> int | None:
    try:
        return worker_pid(base)
    except subprocess.CalledProcessError:
        return None


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def measured(pid: int, request) -> tuple[float, int, int, object]:
    """Run ``request()``; return its seconds, the RSS before it and the peak during it."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak starts again from now
    before = memory_kib(pid)["VmRSS"]
    start = time.perf_counter()
    answer = request()
    spent = time.perf_counter() - start
    return spent, before, memory_kib(pid)["VmHWM"], answer


def answer_every_item(env: dict, batch_id: str) -> None:
    """Every item succeeded, with an output of about a sentence."""
    url = env.get("DATABASE_URL", "")
    text = "'The answer to row ' || row_number || ' is ' || (row_number * 2) || '.'"
    if url.startswith("postgres"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                f"UPDATE batches_interaction SET status = 'succeeded', "
                f"output = jsonb_build_object('text', {text}) WHERE batch_id = %s",
                [batch_id],
            )
        return
    conn = sqlite3.connect(Path(env["VAR_DIR"]) / "db.sqlite3")
    with conn:
        conn.execute(
            f"UPDATE batches_interaction SET status = 'succeeded', "
            f"output = json_object('text', {text}) WHERE batch_id = ?",
            [uuid.UUID(batch_id).hex],
        )
    conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    files = {"csv": csv_file(args.rows), "xlsx": xlsx_file(args.rows)}
    extra = {"BATCH_MAX_ROWS": str(max(args.rows, 100_000)), "WEB_THREADS": "1"}
    results = []
    with server(workers=1, extra_env=extra) as (base, token, env):
        headers = {"Authorization": f"Token {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
            pid = fresh_worker(http, base, None)
            idle = memory_kib(pid)["VmRSS"]
            batch_id = None
            for kind, data in files.items():
                pid = fresh_worker(http, base, pid)

                def upload(kind=kind, data=data):
                    name = f"questions.{kind}"
                    return http.post("/api/v1/batches/", files={"file": (name, data)})

                spent, before, peak, response = measured(pid, upload)
                assert response.status_code == 202, response.text[:300]
                batch_id = batch_id or response.json()["batch_id"]
                size = f"{len(data) / 2**20:.1f} MiB"
                results.append((f"upload {kind.upper()} ({size})", spent, before, peak))
            answer_every_item(env, batch_id)
            for kind in ("csv", "xlsx", "json"):
                pid = fresh_worker(http, base, pid)

                def export(kind=kind):
                    url = f"/api/v1/batches/{batch_id}/results?format={kind}"
                    with http.stream("GET", url) as response:
                        size = sum(len(chunk) for chunk in response.iter_bytes())
                    return response.status_code, size

                spent, before, peak, (status, size) = measured(pid, export)
                assert status == 200, status
                name = f"export {kind.upper()} ({size / 2**20:.1f} MiB)"
                results.append((name, spent, before, peak))
    database = "PostgreSQL" if env.get("DATABASE_URL", "").startswith("postgres") else "SQLite"
    print(
        f"web process memory, {args.rows:,} rows, gunicorn (1 worker, 1 thread), {database}; "
        f"idle {idle / 1024:.0f} MiB; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"  {'request':30} {'seconds':>8} {'RSS before':>11} {'peak':>9} {'peak - idle':>12}")
    for name, spent, before, peak in results:
        print(
            f"  {name:30} {spent:8.2f} {before / 1024:8.0f} MiB {peak / 1024:5.0f} MiB "
            f"{(peak - idle) / 1024:8.0f} MiB"
        )
    print(f"  highest peak: {max(peak for *_, peak in results) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
