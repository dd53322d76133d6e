"""The OpenAI-compatible Batch API driven by the official openai SDK: throughput, the
ratio to the ideal with a slow provider, and creation times and the web process's
memory with a 50,000-line file.

    .venv/bin/python bench/openai_batches.py [--lines 10000] [--slow-lines 1000] [--big 50000]

gunicorn with one worker process of one thread on a scratch database (SQLite unless
DATABASE_URL says otherwise), real ``manage.py db_worker`` processes, and the stub
providers of bench/_model_stub.py (InstantStub for throughput: a canned answer that
costs the machine next to nothing; ModelStub at 200 ms). Throughput is timed from
``batches.create`` to the first ``batches.retrieve`` that answers ``completed``
(polled every 100 ms), with a worker already running. The 50,000-line batch is
answered straight in the table (as bench/memory.py does) and its output file
downloaded through the SDK; each measured request goes to a fresh gunicorn worker
whose peak resident memory (VmHWM) is read.
"""

import argparse
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
from openai import OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._model_stub import InstantStub, ModelStub
from bench._server import PYTHON, ROOT, server
from bench.memory import fresh_worker, measured

CHAT = "/v1/chat/completions"
SLOW_SECONDS, SLOW_CONCURRENCY = 0.2, 32
ENDED = ("completed", "failed", "expired", "cancelled")


def requests_file(count: int, prefix: str = "q") -> bytes:
    lines = []
    for n in range(count):
        question = f"Question number {n}: what is {n} + {n}?"
        body = {"model": "stub-model", "messages": [{"role": "user", "content": question}]}
        lines.append(
            json.dumps({"custom_id": f"{prefix}-{n}", "method": "POST", "url": CHAT, "body": body})
        )
    return ("\n".join(lines) + "\n").encode()


def start_worker(env: dict, **more) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, "manage.py", "db_worker", "--interval", "0.05", "--no-startup-delay"],
        cwd=ROOT,
        env={**env, **{name: str(value) for name, value in more.items()}},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(worker: subprocess.Popen) -> None:
    worker.terminate()
    worker.wait(30)


def run(client: OpenAI, data: bytes, **create) -> tuple[float, object]:
    """Upload ``data``, then time a batch of it from create to its end."""
    file = client.files.create(file=("requests.jsonl", io.BytesIO(data)), purpose="batch")
    started = time.perf_counter()
    batch = client.batches.create(
        input_file_id=file.id, endpoint=CHAT, completion_window="24h", **create
    )
    while batch.status not in ENDED:
        time.sleep(0.1)
        batch = client.batches.retrieve(batch.id)
    return time.perf_counter() - started, batch


def throughput(client: OpenAI, http: httpx.Client, env: dict, lines: int) -> list[str]:
    worker = start_worker(env)
    try:
        run(client, requests_file(20, "warm"))  # the worker is up and warm
        seconds, batch = run(client, requests_file(lines))
        echo = echo_seconds(http, lines)
    finally:
        stop(worker)
    assert batch.request_counts.completed == lines, batch
    return [
        f"{lines:,} chat lines, provider answering at once, one worker (default threads): "
        f"{seconds:.2f} s from batches.create to completed, {lines / seconds:,.0f} lines/s",
        f"the same worker, {lines:,} spreadsheet rows without chat_id through echo (no "
        f"network; this machine's pace now): {lines / echo:,.0f} rows/s",
    ]


def echo_seconds(http: httpx.Client, rows: int) -> float:
    """A CSV of single rows through the echo processor, upload to processed."""
    data = "question\n" + "".join(f"Question number {n}?\n" for n in range(rows))
    started = time.perf_counter()
    response = http.post("/api/v1/batches/", files={"file": ("q.csv", data.encode())})
    response.raise_for_status()
    batch_id = response.json()["batch_id"]
    while http.get(f"/api/v1/batches/{batch_id}/").json()["status"] in ("queued", "processing"):
        time.sleep(0.1)
    return time.perf_counter() - started


def slow_ratio(client: OpenAI, env: dict, lines: int) -> str:
    stub = ModelStub(delay=SLOW_SECONDS)
    slow_env = {**env, "OPENAI_BASE_URL": f"{stub.url}/v1"}
    worker = start_worker(slow_env, BATCH_CONCURRENCY=SLOW_CONCURRENCY)
    concurrency = {"extra_body": {"concurrency": SLOW_CONCURRENCY}}
    try:
        run(client, requests_file(SLOW_CONCURRENCY, "warm"), **concurrency)
        seconds, batch = run(client, requests_file(lines), **concurrency)
    finally:
        stop(worker)
        stub.stop()
    assert batch.request_counts.completed == lines, batch
    ideal = lines * SLOW_SECONDS / SLOW_CONCURRENCY
    return (
        f"{lines:,} lines, provider at {SLOW_SECONDS * 1000:.0f} ms, concurrency "
        f"{SLOW_CONCURRENCY}: {seconds:.2f} s, {seconds / ideal:.2f} x the ideal ({ideal:.2f} s)"
    )


def answer_every_line(env: dict, batch_id: str) -> None:
    """Every line answered by the provider (an output as the processor stores it), and
    the batch processed, written straight into the tables."""
    text = "'The answer to line ' || row_number || ' is ' || (row_number * 2) || '.'"
    url = env.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import psycopg

        build, key, now = "jsonb_build_object", batch_id, "now()"
        array = "jsonb_build_array"
    else:
        build, key, now, array = (
            "json_object",
            uuid.UUID(batch_id).hex,
            "datetime('now')",
            "json_array",
        )
    message = f"{build}('role', 'assistant', 'content', {text})"
    usage = f"{build}('prompt_tokens', 20, 'completion_tokens', 12, 'total_tokens', 32)"
    choices = f"{array}({build}('index', 0, 'message', {message}))"
    body = f"{build}('object', 'chat.completion', 'choices', {choices}, 'usage', {usage})"
    output = (
        f"{build}('text', {text}, 'status_code', 200, 'request_id', 'req_' || row_number, "
        f"'body', {body}, 'usage', {usage})"
    )
    statements = [
        f"UPDATE batches_interaction SET status = 'succeeded', output = {output}, "
        f"prompt_tokens = 20, completion_tokens = 12, total_tokens = 32, attempts = 1 "
        f"WHERE batch_id = %s",
        f"UPDATE batches_batch SET status = 'processed', processed_items = total_items, "
        f"started_at = {now}, finished_at = {now} WHERE id = %s",
    ]
    if url.startswith("postgres"):
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement, [key])
        return
    conn = sqlite3.connect(Path(env["VAR_DIR"]) / "db.sqlite3")
    with conn:
        for statement in statements:
            conn.execute(statement.replace("%s", "?"), [key])
    conn.close()


def big_file(client: OpenAI, base: str, token: str, env: dict, lines: int) -> list[str]:
    """files.create and batches.create of ``lines`` lines, and the download of their
    output, each on a fresh web process: its seconds and peak memory."""
    data = requests_file(lines)
    headers = {"Authorization": f"Token {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
        pid = fresh_worker(http, base, None)
        rows = []

        def timed(name, request):
            nonlocal pid
            pid = fresh_worker(http, base, pid)
            spent, before, peak, answer = measured(pid, request)
            rows.append(
                f"  {name:46} {spent:6.2f} s, peak {peak / 1024:4.0f} MiB "
                f"(+{(peak - before) / 1024:.0f} MiB over the {before / 1024:.0f} MiB before)"
            )
            return answer

        file = timed(
            f"files.create ({len(data) / 2**20:.1f} MiB, {lines:,} lines)",
            lambda: client.files.create(file=("big.jsonl", io.BytesIO(data)), purpose="batch"),
        )
        batch = timed(
            "batches.create on it",
            lambda: client.batches.create(
                input_file_id=file.id, endpoint=CHAT, completion_window="24h"
            ),
        )
        answer_every_line(env, batch.id.removeprefix("batch_"))
        output_id = client.batches.retrieve(batch.id).output_file_id

        def download():
            with client.files.with_streaming_response.content(output_id) as response:
                return sum(len(chunk) for chunk in response.iter_bytes())

        size = timed("files.content of its output (first: written)", download)
        timed(f"files.content again ({size / 2**20:.1f} MiB, stored)", download)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--slow-lines", type=int, default=1_000)
    parser.add_argument("--big", type=int, default=50_000)
    args = parser.parse_args()
    fast = InstantStub()
    extra = {"OPENAI_BASE_URL": f"{fast.url}/v1", "WEB_THREADS": "1"}
    try:
        with server(workers=1, extra_env=extra) as (base, token, env):
            client = OpenAI(base_url=f"{base}/openai/v1", api_key=token, timeout=600)
            headers = {"Authorization": f"Token {token}"}
            with httpx.Client(base_url=base, headers=headers, timeout=600) as http:
                figures = throughput(client, http, env, args.lines)
            if args.slow_lines:  # 0 skips a part
                figures.append(slow_ratio(client, env, args.slow_lines))
            memory = big_file(client, base, token, env, args.big) if args.big else []
    finally:
        fast.stop()
    database = "PostgreSQL" if env.get("DATABASE_URL", "").startswith("postgres") else "SQLite"
    print(f"OpenAI-compatible Batch API, {database}, load average {os.getloadavg()[0]:.1f}")
    for figure in figures:
        print(f"  {figure}")
    if memory:
        print("  web process (gunicorn, 1 worker, 1 thread), each request on a fresh process:")
    for row in memory:
        print(row)


if __name__ == "__main__":
    main()
