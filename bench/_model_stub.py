"""A stub OpenAI-compatible model API on 127.0.0.1 that enforces rate limits as a
provider does, for the rate-limit tests and benchmarks.

It answers POST /v1/chat/completions after ``delay`` seconds. Over
``requests_per_window`` requests or ``tokens_per_window`` tokens among those that
arrived in the last ``window`` seconds (sliding), it answers 429 with a Retry-After.
``pause(seconds)`` makes it answer 429 to everything for that long;
``reject_next(seconds)`` answers 429 with that Retry-After to the next request only,
and counts the requests that arrive in the pause it asked for. It records each
request's arrival (monotonic seconds), tokens and status, from which the callers
count; the tokens are its own count (words, not the client's four characters a
token), so the client's estimate is only an estimate.
"""

import asyncio
import json
import math
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMPLETION_TOKENS = 12


def prompt_tokens(messages: list[dict]) -> int:
    return sum(len(str(m.get("content", "")).split()) * 4 // 3 + 3 for m in messages)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real provider answers
    # Headers and body go out as two writes: with Nagle on, the body waits for the
    # client's delayed ACK of the headers (40 ms a request).
    disable_nagle_algorithm = True

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        stub: ModelStub = self.server.stub
        prompt = prompt_tokens(body.get("messages", []))
        status, retry_after = stub.admit(prompt + COMPLETION_TOKENS)
        if status == 200:
            time.sleep(stub.delay)
            payload = {
                "model": body.get("model", "stub"),
                "choices": [{"message": {"role": "assistant", "content": "ok " * 12}}],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": COMPLETION_TOKENS,
                    "total_tokens": prompt + COMPLETION_TOKENS,
                },
            }
        else:
            payload = {"error": {"message": "Rate limit reached", "type": "requests"}}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class ModelStub:
    def __init__(
        self,
        *,
        delay: float = 0.2,
        requests_per_window: int | None = None,
        tokens_per_window: int | None = None,
        window: float = 60.0,
    ):
        self.delay = delay
        self.requests_per_window = requests_per_window
        self.tokens_per_window = tokens_per_window
        self.window = window
        self.lock = threading.Lock()
        self.arrivals: list[tuple[float, int, int]] = []  # (monotonic, tokens, status)
        self.recent: deque[tuple[float, int]] = deque()  # accepted, in the window
        self.paused_until = 0.0
        self.reject = None  # the Retry-After the next request gets
        self.asked_pause = (0.0, 0.0)  # the pause reject_next asked for, monotonic
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.stub = self
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def admit(self, tokens: int) -> tuple[int, int | None]:
        """200, or 429 and its Retry-After in whole seconds; recorded either way."""
        with self.lock:
            now = time.monotonic()
            while self.recent and self.recent[0][0] <= now - self.window:
                self.recent.popleft()
            status, retry_after = 200, None
            if self.reject is not None:
                status, retry_after = 429, self.reject
                self.asked_pause, self.reject = (now, now + self.reject), None
            elif now < self.paused_until:
                status, retry_after = 429, math.ceil(self.paused_until - now)
            elif self._over(tokens):
                status = 429
                retry_after = max(1, math.ceil(self.recent[0][0] + self.window - now))
            if status == 200:
                self.recent.append((now, tokens))
            self.arrivals.append((now, tokens, status))
            return status, retry_after

    def _over(self, tokens: int) -> bool:
        if self.requests_per_window and len(self.recent) + 1 > self.requests_per_window:
            return True
        spent = sum(n for _, n in self.recent)
        return bool(self.tokens_per_window and spent + tokens > self.tokens_per_window)

    def pause(self, seconds: float) -> None:
        with self.lock:
            self.paused_until = time.monotonic() + seconds

    def reject_next(self, seconds: int) -> None:
        with self.lock:
            self.reject = seconds

    def arrived_in_asked_pause(self) -> int:
        """Requests that arrived while the pause reject_next asked for lasted."""
        with self.lock:
            start, end = self.asked_pause
            return sum(1 for t, _, status in self.arrivals if start < t < end)

    def rejected(self) -> int:
        with self.lock:
            return sum(1 for _, _, status in self.arrivals if status == 429)

    def accepted(self) -> int:
        with self.lock:
            return sum(1 for _, _, status in self.arrivals if status == 200)

    def windows(self, *, weight=lambda tokens: 1) -> tuple[int, int]:
        """The fewest and the most requests (or tokens, with ``weight``) that arrived
        in any ``window`` seconds starting at an arrival; the fewest among windows
        that end before the last arrival (the run's tail is not a slow window)."""
        with self.lock:
            arrivals = [(t, n) for t, n, _ in self.arrivals]
        if not arrivals:
            return 0, 0
        last = arrivals[-1][0]
        whole, every, end = [], [], 0
        for first, (start, _) in enumerate(arrivals):
            while end < len(arrivals) and arrivals[end][0] < start + self.window:
                end += 1
            amount = sum(weight(n) for _, n in arrivals[first:end])
            every.append(amount)
            if start + self.window <= last:
                whole.append(amount)
        return min(whole or every), max(every)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class InstantStub:
    """A provider that answers every chat completion at once with the same answer:
    an asyncio server with HTTP/1.1 keep-alive and no rate limits, in a thread. The
    throughput benches use it where ModelStub's http.server would spend half a
    millisecond of the machine's two CPUs on each request."""

    ANSWER = json.dumps(
        {
            "object": "chat.completion",
            "model": "stub-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok " * 12}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 12, "total_tokens": 22},
        }
    ).encode()
    RESPONSE = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER
    )

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def serve():
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(
                self.loop.create_server(lambda: _Answering(self.RESPONSE), "127.0.0.1", 0)
            )
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        started.wait()
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class _Answering(asyncio.Protocol):
    """Answers each request on the connection once its head and body are in."""

    def __init__(self, response: bytes):
        self.response, self.buffer = response, b""

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(self.response)
