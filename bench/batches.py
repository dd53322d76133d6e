"""Spreadsheet batches: upload latency, echo throughput, concurrency, fair share.

    .venv/bin/python bench/batches.py [--rows 10000] [--slow 200]

Each figure runs against gunicorn and real ``manage.py db_worker`` processes on a
scratch database (SQLite by default; PostgreSQL with DATABASE_URL). Processing
times are the batch's own started_at → finished_at, so worker start-up is left out.
"""

import argparse
import io
import json
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import httpx
from openpyxl import Workbook, load_workbook

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import PYTHON, ROOT, manage, server

ITEM_SECONDS = 0.2


def xlsx(rows: int, *, chat_size: int) -> bytes:
    """``rows`` questions; ``chat_size`` consecutive rows share a chat_id (1 = none)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Questions")
    sheet.append(["question", "chat_id", "url", "lang"])
    for n in range(rows):
        chat = f"chat-{n // chat_size}" if chat_size > 1 else None
        sheet.append([f"Question number {n}: what is {n} + {n}?", chat, "https://x.test/p", "en"])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def upload(
    http: httpx.Client, data: bytes, name: str, options: str = "{}", **fields
) -> tuple[str, float]:
    started = time.perf_counter()
    response = http.post(
        "/api/v1/batches/",
        files={"file": (name, data)},
        data={"options": options, **fields},
        timeout=120,
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return response.json()["batch_id"], elapsed


def start_worker(env: dict, concurrency: int | None = None) -> subprocess.Popen:
    """A db_worker; with ``concurrency`` threads, else the default's."""
    threads = {} if concurrency is None else {"BATCH_CONCURRENCY": str(concurrency)}
    return subprocess.Popen(
        [PYTHON, "manage.py", "db_worker", "--interval", "0.05", "--no-startup-delay"],
        cwd=ROOT,
        env={**env, **threads},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(http: httpx.Client, batch_id: str) -> dict:
    while (batch := http.get(f"/api/v1/batches/{batch_id}/").json())["status"] in (
        "queued",
        "processing",
    ):
        time.sleep(0.1)
    return batch


def process(http: httpx.Client, env: dict, batch_id: str, concurrency: int | None) -> dict:
    """Run one worker until the batch ends; return the batch."""
    worker = start_worker(env, concurrency)
    try:
        return wait_for(http, batch_id)
    finally:
        worker.terminate()
        worker.wait(30)


def token_of(env: dict, username: str) -> str:
    code = (
        "from django.contrib.auth.models import User; from rest_framework.authtoken.models "
        f"import Token; u = User.objects.get_or_create(username={username!r})[0]; "
        "print(Token.objects.get_or_create(user=u)[0].key)"
    )
    return manage(env, "shell", "-c", code).strip().splitlines()[-1]


def finish_times(env: dict, batch_id: str) -> list[float]:
    """The batch's rows' finished_at as Unix times, read from the scratch database."""
    code = (
        "import json; from batches.models import Interaction; print(json.dumps(["
        f"i.timestamp() for i in Interaction.objects.filter(batch_id={batch_id!r})"
        ".values_list('finished_at', flat=True)]))"
    )
    return sorted(json.loads(manage(env, "shell", "-c", code).strip().splitlines()[-1]))


def defaults(env: dict) -> tuple[int, int]:
    """A worker's threads and a batch's concurrency when nothing says otherwise."""
    code = (
        "from django.conf import settings; "
        "print(settings.BATCH_CONCURRENCY, settings.BATCH_CONCURRENCY_DEFAULT)"
    )
    threads, concurrency = manage(env, "shell", "-c", code).strip().splitlines()[-1].split()
    return int(threads), int(concurrency)


def fair_share(base: str, http: httpx.Client, env: dict, slow_rows: int) -> None:
    """A slow batch, and a small one by another user a second later, on one worker
    with its default threads (the small batch with the default concurrency)."""
    other = httpx.Client(base_url=base, headers={"Authorization": f"Token {token_of(env, 'b')}"})
    options = json.dumps({"delay": ITEM_SECONDS})
    threads, concurrency = defaults(env)
    worker = start_worker(env)
    try:
        slow_id, _ = upload(http, xlsx(slow_rows, chat_size=1), "slow.xlsx", options, concurrency=4)
        time.sleep(1)
        small_id, _ = upload(other, xlsx(10, chat_size=1), "small.xlsx", options)
        small = wait_for(other, small_id)
        slow = wait_for(http, slow_id)
    finally:
        worker.terminate()
        worker.wait(30)
    assert small["processed_items"] == 10 and slow["processed_items"] == slow_rows
    uploaded = datetime.fromisoformat(small["created_at"]).timestamp()
    small_end = datetime.fromisoformat(small["finished_at"]).timestamp()
    slow_done = finish_times(env, slow_id)
    during = sum(1 for t in slow_done if uploaded <= t <= small_end) / (small_end - uploaded)
    alone = slow_rows / seconds(slow)
    print(
        f"fair share: a 10-row batch uploaded 1 s after a {slow_rows}-row one by another user "
        f"(0.2 s an item, slow batch concurrency 4, the small one {concurrency} by default, "
        f"one worker of {threads} threads by default) finished "
        f"{(small_end - uploaded) / ITEM_SECONDS:.1f} item-times after its upload; the slow "
        f"batch ran {during:.1f} items/s meanwhile against {alone:.1f} items/s over its whole "
        f"run (a drop of {100 * (1 - during / alone):.0f} %)"
    )


def echo_shape(rows: int) -> bytes:
    """The common shape of a real upload: two thirds of the rows without a chat_id, the
    rest in 500 conversations."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Questions")
    sheet.append(["question", "chat_id"])
    for n in range(rows):
        sheet.append([f"Question number {n}?", f"chat-{n % 500}" if n % 3 == 0 else None])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def seconds(batch: dict) -> float:
    started, finished = (datetime.fromisoformat(batch[k]) for k in ("started_at", "finished_at"))
    return (finished - started).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--slow", type=int, default=200, help="single-row conversations")
    args = parser.parse_args()

    data = xlsx(args.rows, chat_size=10)
    started = time.perf_counter()
    workbook = load_workbook(io.BytesIO(data), read_only=True)
    parsed = sum(1 for _ in workbook.active.iter_rows(values_only=True)) - 1
    workbook.close()
    parse_only = time.perf_counter() - started

    with server(workers=2) as (base, token, env):
        http = httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"})
        batch_id, upload_seconds = upload(http, data, "questions.xlsx")
        print(
            f"upload: {args.rows:,}-row XLSX ({len(data) / 1024:,.0f} KiB) answered 202 in "
            f"{upload_seconds:.2f} s (openpyxl read-only alone reads its {parsed:,} rows in "
            f"{parse_only:.2f} s; ratio {upload_seconds / parse_only:.1f}x)"
        )

        batch = process(http, env, batch_id, concurrency=None)
        assert batch["processed_items"] == args.rows, batch
        took = seconds(batch)
        print(
            f"echo: {args.rows:,} items ({args.rows // 10:,} conversations of 10) by one worker "
            f"in {took:.2f} s = {args.rows / took:,.0f} items/s"
        )

        batch_id, _ = upload(http, echo_shape(args.rows), "shape.xlsx")
        batch = process(http, env, batch_id, concurrency=None)
        assert batch["processed_items"] == args.rows, batch
        took = seconds(batch)
        print(
            f"echo, real shape: {args.rows:,} items (two thirds without chat_id, the rest in "
            f"500 conversations) by one worker in {took:.2f} s = {args.rows / took:,.0f} items/s"
        )

        fair_share(base, http, env, args.slow)

        slow = xlsx(args.slow, chat_size=1)
        timings = {}
        for concurrency in (1, 8):
            # The batch may use every thread: this measures the worker's threads.
            batch_id, _ = upload(
                http, slow, f"slow-{concurrency}.xlsx", '{"delay": 0.05}', concurrency=8
            )
            batch = process(http, env, batch_id, concurrency=concurrency)
            assert batch["processed_items"] == args.slow, batch
            timings[concurrency] = seconds(batch)
        print(
            f"slow: {args.slow} single-row conversations at 50 ms per item: "
            f"BATCH_CONCURRENCY=1 {timings[1]:.2f} s, BATCH_CONCURRENCY=8 {timings[8]:.2f} s "
            f"= {timings[1] / timings[8]:.1f}x faster"
        )


if __name__ == "__main__":
    main()
