"""A stub OpenAI-compatible provider on 127.0.0.1 for the OpenAI-compatible Batch API:
it answers POST /v1/chat/completions, /v1/completions and /v1/embeddings as a model
server would, and records every request it gets.

A request body's ``stub`` object scripts the answer: ``{"status": 400}`` answers that
status with an OpenAI error body, ``{"delay": 0.1}`` answers that many seconds late,
``{"hold": true}`` answers once the test calls :meth:`Provider.release`.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOLD_TIMEOUT = 60.0
PROMPT_TOKENS, COMPLETION_TOKENS = 7, 3


def answer(path: str, body: dict) -> dict:
    """What a model server answers to ``body`` at ``path``."""
    usage = {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    }
    model = body.get("model", "stub-model")
    if path.endswith("/embeddings"):
        usage = {"prompt_tokens": PROMPT_TOKENS, "total_tokens": PROMPT_TOKENS}
        embedding = {"object": "embedding", "index": 0, "embedding": [0.25, -0.5]}
        return {"object": "list", "data": [embedding], "model": model, "usage": usage}
    if path.endswith("/completions") and not path.endswith("/chat/completions"):
        choice = {"index": 0, "text": f"completed {body.get('prompt')}", "finish_reason": "stop"}
        return {"object": "text_completion", "model": model, "choices": [choice], "usage": usage}
    question = (body.get("messages") or [{}])[-1].get("content")
    message = {"role": "assistant", "content": f"answer to {question}"}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return {"object": "chat.completion", "model": model, "choices": [choice], "usage": usage}


def error_body(status: int) -> dict:
    return {"error": {"message": f"stub refused with {status}", "type": "invalid_request_error"}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real provider answers
    disable_nagle_algorithm = True

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        provider: Provider = self.server.provider
        number = provider.record(self.path, body)
        script = body.get("stub") or {}
        if script.get("hold"):
            provider.hold()
        if script.get("delay"):
            time.sleep(script["delay"])
        status = script.get("status", 200)
        payload = answer(self.path, body) if status == 200 else error_body(status)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", f"req_stub_{number}")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class Provider:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[tuple[str, dict]] = []
        self.holding = 0
        self.released = threading.Event()
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.provider = self
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def record(self, path: str, body: dict) -> int:
        with self.lock:
            self.requests.append((path, body))
            return len(self.requests)

    def hold(self) -> None:
        with self.lock:
            self.holding += 1
        self.released.wait(HOLD_TIMEOUT)

    def release(self) -> None:
        self.released.set()

    def held(self) -> int:
        """How many requests have been held so far."""
        with self.lock:
            return self.holding

    def questions(self) -> list:
        """The last message's content of every chat request received, in order: the
        tests put a line's custom_id there."""
        with self.lock:
            return [(body.get("messages") or [{}])[-1].get("content") for _, body in self.requests]

    def stop(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
