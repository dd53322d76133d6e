"""A webhook receiver on 127.0.0.1, as a customer would write one: it verifies each
request's Standard Webhooks signature with the ``standardwebhooks`` package, answers
failures when told to (a status, or no answer in time), and deduplicates on
``webhook-id``, so that a test can count what it accepted, and how often the same
message came again."""

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler

from standardwebhooks import Webhook, WebhookVerificationError

from tests.support.stubs import StubServer

# decide(webhook_id, attempt) -> a status to answer instead of accepting, or None.
Decide = Callable[[str, int], int | None]


def fail_first(attempts: int, status: int = 503) -> Decide:
    """Answer ``status`` to the first ``attempts`` attempts of every message."""
    return lambda webhook_id, attempt: status if attempt <= attempts else None


def always(status: int) -> Decide:
    return lambda webhook_id, attempt: status


class ReceiverHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        receiver: Receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, reply = receiver.receive(dict(self.headers), body)
        if receiver.delay:
            time.sleep(receiver.delay)
        payload = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


class Receiver:
    """``secrets``: what it verifies with (any one may match; set them once the
    endpoint is registered). ``decide``: see :data:`Decide`. ``delay``: seconds to
    wait before answering."""

    def __init__(self, *, secrets: list[str] | None = None, decide: Decide | None = None):
        self.secrets = list(secrets or [])
        self.decide = decide
        self.delay = 0.0
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.attempts: Counter[str] = Counter()
        self.accepted: dict[str, dict] = {}
        self.duplicates: Counter[str] = Counter()
        self.refused_signatures = 0
        self.server = StubServer(("127.0.0.1", 0), ReceiverHandler)
        self.server.receiver = self
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        ).start()

    def receive(self, headers: dict, body: bytes) -> tuple[int, dict]:
        with self.lock:
            self.requests.append({"headers": headers, "body": body})
            payload = self.verified(headers, body)
            if payload is None:
                self.refused_signatures += 1
                return 401, {"error": "bad signature"}
            webhook_id = headers["webhook-id"]
            self.attempts[webhook_id] += 1
            if webhook_id in self.accepted:
                self.duplicates[webhook_id] += 1
                return 200, {"duplicate": True}
            status = self.decide and self.decide(webhook_id, self.attempts[webhook_id])
            if status:
                return status, {"error": "failing on purpose"}
            self.accepted[webhook_id] = payload
            return 200, {"ok": True}

    def verified(self, headers: dict, body: bytes):
        for secret in self.secrets:
            try:
                return Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
        return None

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
