"""The network processors' HTTP/1.1 connections to a provider: kept alive, by origin,
each request written in one send and each answer parsed by httptools (llhttp, in C).

A batch item needs no cookies, auth flows, redirects (one could point anywhere) or
compression, and with a fast provider the HTTP client was the worker's bottleneck:
a call costs about a quarter of the CPU it does through http.client and a tenth of
httpx's. Failures are raised as httpx's transport errors, which the retries read.
"""

import functools
import json
import select
import socket
import ssl
import threading
from http import HTTPStatus
from urllib.parse import urlsplit

import httptools
import httpx

# How much of an answer one read takes from the socket.
READ_SIZE = 65536


class Answer:
    """A provider's answer: what the processors read of it. ``headers`` has the
    names in lower case."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes):
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def reason_phrase(self) -> str:
        try:
            return HTTPStatus(self.status_code).phrase
        except ValueError:
            return ""

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.content)


class Connections:
    """A processor's kept-alive connections, safe to share by threads."""

    def __init__(self, timeout: float, headers: dict[str, str]):
        self.timeout = timeout
        self.headers = headers
        self._idle: dict[tuple, list[socket.socket]] = {}
        self._lock = threading.Lock()

    def post(self, url: str, body: bytes) -> Answer:
        origin, head = _request_head(url, tuple(self.headers.items()))
        sock = self._take(origin)
        try:
            sock.sendall(b"%s%d\r\n\r\n%s" % (head, len(body), body))
            answer, keep = _read_answer(sock)
        except TimeoutError:
            sock.close()
            raise httpx.ReadTimeout("no answer within the timeout") from None
        except (OSError, httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            sock.close()
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from None
        if keep:
            with self._lock:
                self._idle.setdefault(origin, []).append(sock)
        else:
            sock.close()
        return answer

    def _take(self, origin: tuple) -> socket.socket:
        with self._lock:
            idle = self._idle.get(origin) or []
            while idle:
                sock = idle.pop()
                if _alive(sock):
                    return sock
                sock.close()
        scheme, host, port = origin
        try:
            sock = socket.create_connection((host, port), timeout=self.timeout)
        except TimeoutError:
            raise httpx.ConnectTimeout("no connection within the timeout") from None
        except OSError as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if scheme == "https":
            try:
                sock = _tls().wrap_socket(sock, server_hostname=host)
            except (OSError, ssl.SSLError) as exc:
                sock.close()
                raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from None
        return sock

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for socks in idle.values():
            for sock in socks:
                sock.close()


class _Reading:
    """httptools' callbacks: the answer as it is parsed."""

    __slots__ = ("body", "complete", "headers", "keep", "parser", "sized")

    def __init__(self):
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.complete = self.sized = self.keep = False
        self.parser = httptools.HttpResponseParser(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.decode("latin-1").lower()
        value = value.decode("latin-1")
        self.headers[name] = f"{self.headers[name]}, {value}" if name in self.headers else value

    def on_headers_complete(self) -> None:
        self.sized = "content-length" in self.headers or "transfer-encoding" in self.headers

    def on_body(self, data: bytes) -> None:
        self.body.append(data)

    def on_message_complete(self) -> None:
        self.complete = True
        # Asked now: once the message is complete the parser is ready for the next.
        self.keep = self.parser.should_keep_alive()


def _read_answer(sock: socket.socket) -> tuple[Answer, bool]:
    """The answer read from ``sock``, and whether the connection may carry another."""
    reading = _Reading()
    parser = reading.parser
    while not reading.complete:
        data = sock.recv(READ_SIZE)
        if not data:
            # An answer without a length ends with its connection; any other is cut.
            if reading.headers and not reading.sized:
                break
            raise ConnectionError("the server closed the connection before its answer ended")
        parser.feed_data(data)
    answer = Answer(parser.get_status_code(), reading.headers, b"".join(reading.body))
    reading.parser = None  # no cycle left for the garbage collector
    return answer, reading.keep


def _alive(sock: socket.socket) -> bool:
    """Whether an idle connection can carry a request: a socket readable while no
    request is out is one the server closed (or that holds stray bytes)."""
    poll = select.poll()
    poll.register(sock, select.POLLIN)
    return not poll.poll(0)


@functools.lru_cache(maxsize=64)
def _request_head(url: str, headers: tuple) -> tuple[tuple, bytes]:
    """``url``'s origin, and a POST's head up to its Content-Length value."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise httpx.UnsupportedProtocol(f"Cannot call {url!r}: not an http(s) address.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default = 443 if parts.scheme == "https" else 80
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    lines = [
        f"POST {target} HTTP/1.1",
        f"Host: {host}" + ("" if port == default else f":{port}"),
        *(f"{name}: {value}" for name, value in headers),
        "Content-Length: ",
    ]
    return (parts.scheme, parts.hostname, port), "\r\n".join(lines).encode("latin-1")


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for the process: loading the CA bundle costs 0.1 s of CPU,
    which a context per processor (each thread's of each batch) paid again."""
    return httpx.create_ssl_context()
