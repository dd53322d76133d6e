"""Stub HTTP servers on 127.0.0.1 standing in for third parties we cannot run here
(a model API, a webhook receiver)."""

import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        stub = self.server.stub
        with stub.lock:
            stub.requests.append(
                {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
            )
            reply = stub.replies.pop(0) if stub.replies else stub.default
        if reply.get("delay"):
            time.sleep(reply["delay"])
        if reply.get("gate"):
            reply["gate"].wait(60)
        if reply.get("hang_up"):
            self.close_connection = True
            return
        # Closed once answered without saying so, as a server closes an idle kept-alive
        # connection (HTTP/1.1 stubs only: a 1.0 answer always closes).
        self.close_connection = bool(reply.get("close_after"))
        payload = reply.get("raw", json.dumps(reply.get("json", {})).encode())
        self.send_response(reply.get("status", 200))
        for name, value in {"Content-Type": "application/json", **reply.get("headers", {})}.items():
            self.send_header(name, value)
        framing = reply.get("framing", "sized")
        if framing == "chunked":  # in two chunks
            self.send_header("Transfer-Encoding", "chunked")
            half = len(payload) // 2
            chunks = [payload[:half], payload[half:], b""]
            payload = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
        elif framing == "cut":  # says one byte more than it sends, then closes
            self.send_header("Content-Length", str(len(payload) + 1))
            self.close_connection = True
        elif framing == "sized":
            self.send_header("Content-Length", str(len(payload)))
        else:  # "unsized": the answer ends with the connection
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        with self.server.stub.lock:
            self.server.stub.connections += 1

    def finish(self):
        super().finish()
        with self.server.stub.lock:
            self.server.stub.closed += 1


class KeepAliveHandler(StubHandler):
    protocol_version = "HTTP/1.1"


class StubServer(ThreadingHTTPServer):
    request_queue_size = 64  # the default 5 drops the connections of 8 threads at once


class Stub:
    """A real HTTP server on 127.0.0.1. ``replies`` are answered in order, then
    ``default``; each is a dict: status, json or raw, headers, delay, hang_up, gate (a
    threading.Event the answer waits for), close_after and framing (sized, chunked,
    unsized or cut). ``keep_alive``: answer in
    HTTP/1.1, keeping connections open; ``tls``: answer over TLS with this context, at
    https://localhost; ``connections`` counts those accepted and ``closed`` those it
    closed."""

    def __init__(self, keep_alive: bool = False, tls: ssl.SSLContext | None = None):
        self.requests: list[dict] = []
        self.connections = self.closed = 0
        self.replies: list[dict] = []
        self.default = {"json": {"text": "stub answer"}}
        self.lock = threading.Lock()
        handler = KeepAliveHandler if keep_alive else StubHandler
        self.server = StubServer(("127.0.0.1", 0), handler)
        self.server.stub = self
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            self.url = f"https://localhost:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/answer"
