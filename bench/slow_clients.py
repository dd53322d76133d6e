"""Slow clients: how long an ordinary GET waits while N uploads trickle their bodies
in, with gunicorn's sync workers and with the gthread workers of gunicorn.conf.py
(2 processes each).

    .venv/bin/python bench/slow_clients.py [--uploads 2 8 20] [--drip-seconds 3]

Each upload is a runs batch whose body is sent in small pieces spread over
--drip-seconds. While they drip, a client GETs /api/v1/runs/ again and again; the
table shows how many GETs were answered during the drip and how long they took.
"""

import argparse
import json
import socket
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import server

MODELS = {
    # threads > 1 would turn sync workers into gthread ones.
    "sync": ("--worker-class", "sync", "--threads", "1"),
    "gthread": (),  # gunicorn.conf.py: gthread, WEB_THREADS threads per process
}
PIECES = 30


def run_body() -> bytes:
    run = {
        "event_id": str(uuid.uuid4()),
        "run_id": f"slow-{uuid.uuid4().hex[:12]}",
        "agent_name": "bench.slow",
        "job_type": "bench",
        "start_time": "2026-01-28T10:30:00Z",
        "status": "running",
        "context_json": {"padding": "x" * 2000},
    }
    return json.dumps({"runs": [run]}).encode()


def slow_upload(base: str, token: str, seconds: float, answers: list) -> None:
    body = run_body()
    parts = urlsplit(base)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(
            (
                f"POST /api/v1/runs/batch HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                f"Authorization: Token {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
        )
        step = -(-len(body) // PIECES)
        for start in range(0, len(body), step):
            sock.sendall(body[start : start + step])
            time.sleep(seconds / PIECES)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    answers.append(answer.split(b"\r\n", 1)[0].decode())


def measure(model: str, uploads: int, seconds: float) -> dict:
    with server(workers=2, args=MODELS[model]) as (base, token, _env):
        answers: list[str] = []
        threads = [
            threading.Thread(target=slow_upload, args=(base, token, seconds, answers))
            for _ in range(uploads)
        ]
        for thread in threads:
            thread.start()
        time.sleep(min(0.5, seconds / 4))  # every upload is under way
        latencies = []
        headers = {"Authorization": f"Token {token}"}
        deadline = time.monotonic() + seconds * 0.75
        with httpx.Client(headers=headers, timeout=seconds * 10) as client:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                client.get(f"{base}/api/v1/runs/").raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)
                time.sleep(0.1)
        for thread in threads:
            thread.join()
    created = sum(answer.endswith("201 Created") for answer in answers)
    return {"gets": latencies, "created": created}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, nargs="+", default=[2, 8, 20])
    parser.add_argument("--drip-seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"GET /api/v1/runs/ while N uploads drip for {args.drip_seconds:g} s, 2 processes")
    print(f"{'workers':8} {'N':>3} {'GETs':>5} {'median ms':>10} {'max ms':>9} {'uploads ok':>11}")
    worst = {}
    for uploads in args.uploads:
        for model in MODELS:
            result = measure(model, uploads, args.drip_seconds)
            gets = result["gets"]
            worst[model, uploads] = max(gets)
            print(
                f"{model:8} {uploads:>3} {len(gets):>5} {statistics.median(gets):>10.1f} "
                f"{max(gets):>9.1f} {result['created']:>5}/{uploads}"
            )
    for uploads in args.uploads:
        ratio = worst["sync", uploads] / worst["gthread", uploads]
        print(f"N={uploads}: slowest GET {ratio:.0f} x shorter with gthread than with sync")


if __name__ == "__main__":
    main()
