"""Start batchsvc under gunicorn on a scratch database for a benchmark."""

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manage(env, *args) -> str:
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout


@contextmanager
def server(workers: int = 2, extra_env: dict | None = None, args: tuple[str, ...] = ()):
    """Yield ``(base_url, token, env)`` for a fresh gunicorn on a scratch database, with
    gunicorn.conf.py's settings (gunicorn reads it from the repository root) and
    ``args`` overriding them."""
    with tempfile.TemporaryDirectory(prefix="batchsvc-bench-") as var:
        env = {
            **os.environ,
            "VAR_DIR": var,
            "SECRET_KEY": "bench",
            "BATCH_THROTTLE_RATE": "",
            "LOG_LEVEL": "WARNING",
            **(extra_env or {}),
        }
        manage(env, "migrate", "--noinput")
        token = (
            manage(
                env,
                "shell",
                "-c",
                "from django.contrib.auth.models import User; from rest_framework.authtoken.models "
                "import Token; u = User.objects.get_or_create(username='bench')[0]; "
                "print(Token.objects.get_or_create(user=u)[0].key)",
            )
            .strip()
            .splitlines()[-1]
        )
        port = free_port()
        proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "gunicorn",
                "batchsvc.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--log-level",
                "warning",
                *args,
            ],
            cwd=ROOT,
            env=env,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    httpx.get(f"{base}/healthz", timeout=1)
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            yield base, token, env
        finally:
            proc.terminate()
            proc.wait(10)
