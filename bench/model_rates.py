"""Provider rate limits held by two workers, and concurrency against a slow model.

    .venv/bin/python bench/model_rates.py [--quick] [--seconds 150]

A stub OpenAI-compatible model API (bench/_model_stub.py) answers in 200 ms and
enforces its limits over a sliding 60 s window with 429 + Retry-After. Against it,
gunicorn and real ``manage.py db_worker`` processes on a scratch database (SQLite by
default; PostgreSQL with DATABASE_URL; the lanes in Redis with CACHE_URL):

1. 600 requests a minute, two workers of 16 threads: the 429s, and the fewest and
   most requests that arrived in any 60 s;
2. the same with a tokens-per-minute limit that is the tighter one;
3. no limit: 1,000 single-row items at concurrency 32 on one worker, against the
   ideal 1,000 x 0.2 s / 32.
"""

import argparse
import json
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._model_stub import ModelStub
from bench._server import server
from bench.batches import seconds, start_worker, upload, wait_for, xlsx

DELAY = 0.2
RPM = 600


def limited_run(http, env, *, rows: int, limits: dict, stub: ModelStub) -> dict:
    """Two workers of 16 threads on one batch of ``rows`` single-row items."""
    env = {
        **env,
        "OPENAI_BASE_URL": stub.url + "/v1",
        "BATCH_RATE_LIMITS": json.dumps({"openai": limits}),
    }
    batch_id, _ = upload(
        http, xlsx(rows, chat_size=1), "rates.xlsx", processor="openai", concurrency="32"
    )
    workers = [start_worker(env, concurrency=16) for _ in range(2)]
    try:
        batch = wait_for(http, batch_id)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)
    assert batch["processed_items"] == rows, batch
    return batch


def report(what: str, stub: ModelStub, batch: dict, limit: int, *, tokens: bool = False) -> None:
    weight = (lambda n: n) if tokens else (lambda n: 1)
    fewest, most = stub.windows(weight=weight)
    unit = "tokens" if tokens else "requests"
    took = seconds(batch)
    print(
        f"{what}: {stub.accepted():,} requests in {took:.0f} s, {stub.rejected()} answered 429; "
        f"{unit} in any 60 s window: {fewest:,} to {most:,} against a limit of {limit:,} "
        f"({fewest / limit:.1%} to {most / limit:.1%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="80 s per limited run")
    parser.add_argument("--seconds", type=int, default=150, help="length of each limited run")
    parser.add_argument("--only", choices=("rpm", "tpm", "free"), help="run one of the three")
    args = parser.parse_args()
    runs = [args.only] if args.only else ["rpm", "tpm", "free"]
    run_seconds = 80 if args.quick else args.seconds

    # The web process only checks at upload that openai has an address (it never calls
    # it); each run's workers get its stub's.
    with server(workers=2, extra_env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}) as (
        base,
        token,
        env,
    ):
        http = httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"})

        if "rpm" in runs:
            rpm_run(http, env, run_seconds)
        if "tpm" in runs:
            tpm_run(http, env, run_seconds)
        if "free" in runs:
            free_run(http, env)


def rpm_run(http, env, run_seconds: int) -> None:
    stub = ModelStub(delay=DELAY, requests_per_window=RPM)
    try:
        rows, limits = RPM * run_seconds // 60, {"requests_per_minute": RPM}
        batch = limited_run(http, env, rows=rows, limits=limits, stub=stub)
        report("600 rpm, 2 workers x 16 threads", stub, batch, RPM)
    finally:
        stub.stop()


def tpm_run(http, env, run_seconds: int) -> None:
    # About 24 tokens a request (the stub's count): 6,000 a minute is 250 requests.
    tpm = 6000
    stub = ModelStub(delay=DELAY, requests_per_window=RPM, tokens_per_window=tpm)
    try:
        batch = limited_run(
            http,
            env,
            rows=250 * run_seconds // 60,
            limits={"requests_per_minute": RPM, "tokens_per_minute": tpm},
            stub=stub,
        )
        what = "6,000 tpm (the tighter), 600 rpm, 2 workers x 16"
        report(what, stub, batch, tpm, tokens=True)
    finally:
        stub.stop()


def free_run(http, env, rows: int = 1000) -> None:
    """The openai processor against the stub, then echo sleeping as long (the worker's
    own cost per item, without HTTP), one worker of 32 threads each."""
    stub = ModelStub(delay=DELAY)
    ideal = rows * DELAY / 32
    try:
        took = one_worker_run(
            http, {**env, "OPENAI_BASE_URL": stub.url + "/v1"}, rows, processor="openai"
        )
    finally:
        stub.stop()
    echo = one_worker_run(http, env, rows, processor="echo", options=json.dumps({"delay": DELAY}))
    print(
        f"no limit: {rows:,} single-row items at 200 ms, concurrency 32, one worker: "
        f"{took:.2f} s against an ideal {ideal:.2f} s = {took / ideal:.2f} x ideal "
        f"(echo sleeping 200 ms: {echo:.2f} s = {echo / ideal:.2f} x ideal)"
    )


def one_worker_run(http, env, rows: int, *, processor: str, options: str = "{}") -> float:
    data = xlsx(rows, chat_size=1)
    batch_id, _ = upload(
        http, data, f"{processor}.xlsx", options, processor=processor, concurrency="32"
    )
    worker = start_worker(env, concurrency=32)
    try:
        batch = wait_for(http, batch_id)
    finally:
        worker.terminate()
        worker.wait(30)
    assert batch["processed_items"] == rows, batch
    return seconds(batch)


if __name__ == "__main__":
    main()
