"""``python manage.py db_worker`` in a subprocess against the test database."""

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The test database as a DATABASE_URL, for worker processes the tests start."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(settings['NAME']).resolve()}"
    user, host, port = settings["USER"], settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"


class Worker:
    """``python manage.py db_worker`` in a subprocess against the test database."""

    def __init__(self, **env):
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "SECRET_KEY": "test",
            "LOG_LEVEL": "WARNING",
            **{name: str(value) for name, value in env.items()},
        }
        self.process = None
        # Its log, copied to this test's stderr when it stops (pytest shows it
        # when the test fails).
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)

    def start(self, *args) -> "Worker":
        self.process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "db_worker",
                "--interval",
                "0.1",
                "--no-startup-delay",
                "--no-reload",
                *args,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        return self

    def output(self) -> str:
        """What the worker has logged so far."""
        return shared_log(self.log)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.seek(0)
        sys.stderr.write(self.log.read().decode(errors="replace"))
        self.log.close()


def shared_log(log) -> str:
    """What a process wrote so far to ``log``, a file it shares with the test: read
    with pread, which leaves alone the shared offset at which the process writes."""
    return os.pread(log.fileno(), 1 << 24, 0).decode(errors="replace")
