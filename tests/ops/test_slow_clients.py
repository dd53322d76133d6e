import json
import socket
import time

import httpx

from tests.conftest import make_run
from tests.support.servers import served_app

UPLOADS = 3


class SlowUpload:
    """A runs batch whose body a client sends a few bytes at a time, over a socket of
    its own, and finishes only when told to."""

    def __init__(self, port: int, token: str):
        self.body = json.dumps({"runs": [make_run()]}).encode()
        self.sent = 0
        self.sock = socket.create_connection(("127.0.0.1", port))
        head = (
            "POST /api/v1/runs/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Token {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n"
        )
        self.sock.sendall(head.encode())

    def drip(self, size: int = 8) -> None:
        assert self.sent + size < len(self.body), "an upload may not finish here"
        self.sock.sendall(self.body[self.sent : self.sent + size])
        self.sent += size

    def finish(self) -> str:
        """Send the rest; return the status line of the answer."""
        self.sock.sendall(self.body[self.sent :])
        answer = b""
        while chunk := self.sock.recv(65536):
            answer += chunk
        self.sock.close()
        return answer.split(b"\r\n", 1)[0].decode()


def test_an_ordinary_get_is_answered_while_slow_uploads_hold_connections(tmp_path):
    server, token = served_app(tmp_path, "--workers", "2")
    with server:
        uploads = [SlowUpload(server.port, token) for _ in range(UPLOADS)]
        for _ in range(5):  # every upload is under way, its body half-sent
            for upload in uploads:
                upload.drip()
            time.sleep(0.05)
        # Two sync workers would both be reading upload bodies: this GET would wait
        # for an upload to end, and none can, since they end only after it.
        response = httpx.get(
            f"{server.url}/api/v1/runs/", headers={"Authorization": f"Token {token}"}, timeout=60
        )
        assert response.status_code == 200
        assert [upload.finish() for upload in uploads] == ["HTTP/1.1 201 Created"] * UPLOADS
