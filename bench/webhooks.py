"""Webhooks at the end of 1,000 batches, to a receiver that fails half of the first
attempts: every event delivered, none accepted twice.

    .venv/bin/python bench/webhooks.py [--batches N] [--workers N]

gunicorn and two ``db_worker`` processes on a scratch database (SQLite; PostgreSQL
with DATABASE_URL), WEBHOOKS_ALLOW_PRIVATE on so that the receiver may listen on
127.0.0.1. The receiver verifies each signature with the standardwebhooks package,
answers 503 to the first attempt of every other message (by its webhook-id), and
deduplicates on webhook-id: an attempt of a message it already accepted is counted,
not accepted again. One-row ``echo`` batches are uploaded through the API; each one's
end is a ``batch.completed`` event.
"""

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from standardwebhooks import Webhook, WebhookVerificationError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._server import PYTHON, ROOT, server


class Receiver(ThreadingHTTPServer):
    request_queue_size = 128

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.webhook: Webhook | None = None
        self.lock = threading.Lock()
        self.attempts: Counter[str] = Counter()
        self.accepted: dict[str, float] = {}  # webhook-id -> when accepted
        self.ended: dict[str, float] = {}  # webhook-id -> the batch's end (event timestamp)
        self.again = 0  # attempts of messages already accepted
        self.bad_signatures = 0
        self.failed_on_purpose = 0

    def receive(self, headers, body: bytes) -> int:
        try:
            event = self.webhook.verify(body, dict(headers))
        except WebhookVerificationError:
            with self.lock:
                self.bad_signatures += 1
            return 401
        webhook_id = headers["webhook-id"]
        with self.lock:
            self.attempts[webhook_id] += 1
            if webhook_id in self.accepted:
                self.again += 1
                return 200
            if self.attempts[webhook_id] == 1 and fails_first(webhook_id):
                self.failed_on_purpose += 1
                return 503
            self.accepted[webhook_id] = time.time()
            self.ended[webhook_id] = datetime.fromisoformat(event["timestamp"]).timestamp()
            return 200


def fails_first(webhook_id: str) -> bool:
    """Half of the messages, picked by their id."""
    return hashlib.sha256(webhook_id.encode()).digest()[0] % 2 == 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status = self.server.receive(self.headers, body)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def start_worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [PYTHON, "manage.py", "db_worker", "--interval", "0.05", "--no-startup-delay"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def upload(http: httpx.Client, n: int) -> None:
    files = {"file": (f"b{n}.csv", f"question\nq{n}\n".encode(), "text/csv")}
    response = http.post("/api/v1/batches/", files=files)
    assert response.status_code == 202, response.text[:300]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    env = {"WEBHOOKS_ALLOW_PRIVATE": "true", "WEBHOOKS_BACKOFF_MS": "1000"}
    with server(extra_env=env) as (base, token, server_env):
        http = httpx.Client(base_url=base, headers={"Authorization": f"Token {token}"}, timeout=60)
        url = f"http://127.0.0.1:{receiver.server_port}/hooks"
        created = http.post("/api/v1/webhooks", json={"url": url, "events": ["batch.completed"]})
        assert created.status_code == 201, created.text
        receiver.webhook = Webhook(created.json()["secret"])
        workers = [start_worker(server_env) for _ in range(args.workers)]
        try:
            started = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda n: upload(http, n), range(args.batches)))
            uploaded = time.perf_counter() - started
            deadline = time.monotonic() + 600
            while len(receiver.accepted) < args.batches and time.monotonic() < deadline:
                time.sleep(0.2)
            spent = time.perf_counter() - started
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait(30)
    report(receiver, args, uploaded, spent)


def report(receiver: Receiver, args, uploaded: float, spent: float) -> None:
    latency = sorted(receiver.accepted[i] - receiver.ended[i] for i in receiver.accepted)
    p99 = statistics.quantiles(latency, n=100, method="inclusive")[98] if latency else 0
    twice = sum(1 for count in receiver.attempts.values() if count > 2)
    load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    database = "PostgreSQL" if os.environ.get("DATABASE_URL") else "SQLite"
    print(f"webhooks: {args.batches:,} batch ends, {args.workers} workers, {database}; {load}")
    print(
        f"  accepted {len(receiver.accepted):,} of {args.batches:,} events in {spent:.1f} s "
        f"(uploads took {uploaded:.1f} s); {sum(receiver.attempts.values()):,} requests, "
        f"{receiver.failed_on_purpose} first attempts failed on purpose"
    )
    print(
        f"  sent again after acceptance (dropped by the receiver's deduplication): "
        f"{receiver.again}; messages tried more than twice: {twice}; bad signatures: "
        f"{receiver.bad_signatures}"
    )
    print(
        f"  batch end to acceptance: median {statistics.median(latency):.2f} s, "
        f"p99 {p99:.2f} s (a failed first attempt waits 0.75-1 s before the second)"
    )


if __name__ == "__main__":
    main()
