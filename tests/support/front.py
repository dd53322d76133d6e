"""An HTTP server in front of a real one, for client tests of outages and request
encodings. It forwards each request (a gzip body decoded first, as a server that
accepts them would) and records what it received, when, and what it answered.

Its ``mode`` says how it answers:

- ``"up"``: it forwards, and answers what the server answered;
- ``"unavailable"``: it answers 503 with ``retry_after`` and a JSON error, as
  the server does while its database is down; nothing is forwarded;
- ``"failing"``: it answers 500, as a server does on a bug on every request;
- ``"losing"``: it forwards, and answers 502: the server acted, the client
  never hears how;
- ``"slow"``: it waits ``slow_seconds``, then forwards and answers: a client
  with a shorter timeout has given up by then, but the server acts.

``stop()`` closes the port (connection refused) until ``start()``. ``outage()``
runs a sequence of modes in the background once some requests have been
answered, so that an outage can start in the middle of what a client sends.
"""

import contextlib
import gzip
import http.client
import http.server
import json
import socketserver
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# Not forwarded either way: they describe one connection, or a body we re-encode.
_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}
)
MODES = ("up", "unavailable", "failing", "losing", "slow")


@dataclass
class Seen:
    """One request as the front received it, and its answer."""

    method: str
    path: str
    headers: dict[str, str]
    size: int  # bytes of body received
    body: bytes  # the body decoded
    arrived: float  # time.monotonic()
    arrived_wall: float  # time.time()
    status: int = 0
    answered: float = 0.0  # time.monotonic() just before the answer was sent
    mode: str = ""

    @property
    def encoding(self) -> str | None:
        return self.headers.get("content-encoding")

    def json(self):
        return json.loads(self.body)


@dataclass
class _Phase:
    mode: str  # one of MODES, or "down" for a closed port
    seconds: float


@dataclass
class _Outage:
    after: int
    phases: list[_Phase] = field(default_factory=list)


class FrontServer:
    def __init__(self, upstream_url: str):
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname, parts.port)
        self.mode = "up"
        self.retry_after: str | None = "1"
        self.slow_seconds = 1.0
        self.seen: list[Seen] = []
        self.outage_over = threading.Event()
        self._outage: _Outage | None = None
        self._server: http.server.ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FrontServer":
        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self.port = server.server_address[1]  # the same port again after a stop()
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the port, and wait for the requests in progress to be answered,
        so that none reaches the server after the test."""
        server = self._close_port()
        if server is not None:
            server.server_close()  # joins the request threads

    def _close_port(self) -> http.server.ThreadingHTTPServer | None:
        """Clients get 'connection refused' until start()."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            socketserver.TCPServer.server_close(server)  # without joining: we may be one
        return server

    def outage(self, phases: list[tuple[str, float]], *, after: int = 0) -> None:
        """Once ``after`` requests have been answered, spend ``seconds`` in each
        ``(mode, seconds)`` phase in turn ("down": the port closed), then go back
        to "up" and set ``outage_over``."""
        self.outage_over.clear()
        with self._lock:
            self._outage = _Outage(after, [_Phase(mode, seconds) for mode, seconds in phases])
        self._maybe_start_outage()

    def statuses(self, path_end: str = "") -> list[int]:
        with self._lock:
            return [seen.status for seen in self.seen if seen.path.endswith(path_end)]

    # Serving ------------------------------------------------------------

    def handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        seen = self._receive(handler)
        mode = self.mode
        if mode == "slow":
            time.sleep(self.slow_seconds)
        if mode in ("up", "losing", "slow"):
            status, headers, body = self._forward(seen)
            if mode == "losing":
                status, headers, body = _error(502, "The upstream server's answer was lost.")
        elif mode == "unavailable":
            status, headers, body = _error(503, "The database is unavailable.")
            if self.retry_after is not None:
                headers["Retry-After"] = self.retry_after
        else:
            status, headers, body = _error(500, "Internal server error.")
        seen.status, seen.mode = status, mode
        # Before answering: the client's next request already meets the outage.
        self._maybe_start_outage()
        seen.answered = time.monotonic()
        self._answer(handler, status, headers, body)

    def _receive(self, handler) -> Seen:
        arrived, arrived_wall = time.monotonic(), time.time()
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        headers = {name.lower(): value for name, value in handler.headers.items()}
        body = gzip.decompress(raw) if headers.get("content-encoding") == "gzip" else raw
        seen = Seen(handler.command, handler.path, headers, len(raw), body, arrived, arrived_wall)
        with self._lock:
            self.seen.append(seen)
        return seen

    def _forward(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(*self.upstream, timeout=60)
        try:
            headers = {k: v for k, v in seen.headers.items() if k not in _HOP_HEADERS}
            connection.request(seen.method, seen.path, body=seen.body, headers=headers)
            response = connection.getresponse()
            body = response.read()
            answer = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_HEADERS}
            if response.getheader("Content-Encoding"):  # passed on as it came
                answer["Content-Encoding"] = response.getheader("Content-Encoding")
            return response.status, answer, body
        finally:
            connection.close()

    @staticmethod
    def _answer(handler, status: int, headers: dict[str, str], body: bytes) -> None:
        # A client that stopped waiting (a timeout) has closed its end: no one to tell.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            handler.send_response(status)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)

    # Outages ------------------------------------------------------------

    def _maybe_start_outage(self) -> None:
        with self._lock:
            outage = self._outage
            answered = sum(1 for seen in self.seen if seen.status)
            if outage is None or answered < outage.after:
                return
            self._outage = None
        self._enter(outage.phases[0])
        threading.Thread(target=self._run_outage, args=(outage.phases,), daemon=True).start()

    def _run_outage(self, phases: list[_Phase]) -> None:
        for number, phase in enumerate(phases):
            if number:
                self._enter(phase)
            time.sleep(phase.seconds)
            if phase.mode == "down":
                self.start()
        self.mode = "up"
        self.outage_over.set()

    def _enter(self, phase: _Phase) -> None:
        if phase.mode == "down":
            self._close_port()
        else:
            self.mode = phase.mode


def _handler(front: FrontServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        # HTTP/1.0: one request per connection, so a closed port refuses the next one.
        protocol_version = "HTTP/1.0"

        def _handle(self):
            front.handle(self)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        def log_message(self, format, *args):
            pass  # the test reads front.seen instead

    return Handler


def _error(status: int, sentence: str) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"error": sentence}).encode()
    return status, {"Content-Type": "application/json"}, body
