"""Processes the e2e tests start on spare local ports: the web server (gunicorn, as
`make run` starts it) against a database of the test's choosing."""

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.batches.factories import wait_until

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def spare_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def accepting(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def read_log(log) -> str:
    """What a process wrote so far to ``log``, a file it shares: read with pread,
    which leaves the shared offset, where the process writes, alone."""
    return os.pread(log.fileno(), 1 << 22, 0).decode(errors="replace")


class WebServer:
    """gunicorn serving batchsvc with one worker on a spare port."""

    def __init__(self, database_url: str, **env):
        self.port = spare_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test",
            "LOG_LEVEL": "WARNING",
            **{name: str(value) for name, value in env.items()},
        }
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self.process = None

    def start(self) -> "WebServer":
        self.process = subprocess.Popen(
            [
                *(BIN / "gunicorn", "batchsvc.wsgi", "--bind", f"127.0.0.1:{self.port}"),
                *("--workers", "1", "--timeout", "60"),
                "--no-control-socket",  # its default path is one for every gunicorn
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        wait_until(lambda: accepting(self.port), timeout=30, message="gunicorn listening")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        sys.stderr.write(read_log(self.log))
        self.log.close()
