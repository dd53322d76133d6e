"""gunicorn, started by a test with gunicorn.conf.py on a spare port."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gunicorn:
    """``gunicorn --config gunicorn.conf.py`` in a subprocess; ``args`` override it."""

    def __init__(self, *args: str, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args
        self.env = {
            **os.environ,
            "SECRET_KEY": "test",
            "LOG_LEVEL": "WARNING",
            "PORT": str(self.port),
            **env,
        }
        self.process = None
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)

    def __enter__(self) -> "Gunicorn":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return self
            except httpx.TransportError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        self.__exit__()
        raise AssertionError("gunicorn did not start")

    def output(self) -> str:
        """What the server has printed so far."""
        self.log.flush()
        with open(self.log.fileno(), "rb", closefd=False) as log:
            log.seek(0)
            return log.read().decode(errors="replace")

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.seek(0)
        sys.stderr.write(self.log.read().decode(errors="replace"))
        self.log.close()


def manage(*args: str, env: dict | None = None, database_url: str | None = None, **more) -> str:
    """``python manage.py *args`` in a subprocess with ``env`` (default: this process's,
    with a test SECRET_KEY) and ``database_url``; its output, or a failed assertion
    showing its error output."""
    env = dict(env or {**os.environ, "SECRET_KEY": "test"}, **more)
    if database_url:
        env["DATABASE_URL"] = database_url
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def served_app(var_dir: Path, *args: str, **env: str) -> tuple[Gunicorn, str]:
    """A gunicorn (not started yet) on a fresh, migrated SQLite database in
    ``var_dir`` with metrics of its own there, and an API token for it."""
    server = Gunicorn(
        *args,
        VAR_DIR=str(var_dir),
        DATABASE_URL=f"sqlite:///{var_dir / 'db.sqlite3'}",
        PROMETHEUS_MULTIPROC_DIR=str(var_dir / "prometheus"),
        BATCH_THROTTLE_RATE="",
        **env,
    )
    manage("migrate", "--noinput", "-v0", env=server.env)
    token = manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; from rest_framework.authtoken.models "
        "import Token; print(Token.objects.create(user=User.objects.create(username='u')).key)",
        env=server.env,
    ).split()[-1]
    return server, token
