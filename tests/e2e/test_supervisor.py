"""`make run`'s supervisor (supervisord.conf) starts a process that dies again and
leaves the others running."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest

from batches.models import Worker as WorkerRow
from tests.support.servers import free_port
from tests.support.waiting import wait_until
from tests.support.workers import ROOT, database_url, shared_log

BIN = Path(sys.executable).parent


class Supervisor:
    """supervisord with the repository's config, on a spare port and a var/ of its own."""

    def __init__(self):
        # A short path: the control socket lives here, and socket paths are short.
        self.var = tempfile.mkdtemp(prefix="batchsvc-sv-")
        self.port = free_port()
        self.env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_WORKERS": "1",
            "VAR_DIR": self.var,
            "DATABASE_URL": database_url(),
            "SECRET_KEY": "test",
            "LOG_LEVEL": "WARNING",
        }
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [BIN / "supervisord", "-c", ROOT / "supervisord.conf"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def ctl(self, *args) -> str:
        result = subprocess.run(
            [BIN / "supervisorctl", "-c", ROOT / "supervisord.conf", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return result.stdout

    def running_pid(self, program: str) -> int | None:
        """The program's pid once supervisord counts it as running, else None."""
        if " RUNNING " not in self.ctl("status", program):
            return None
        return int(self.ctl("pid", program))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        print(shared_log(self.log))
        self.log.close()
        shutil.rmtree(self.var, ignore_errors=True)


@pytest.fixture
def supervisor(transactional_db):
    running = Supervisor()
    yield running
    running.stop()


def test_a_killed_worker_is_started_again_and_the_web_server_keeps_serving(supervisor):
    worker = wait_until(lambda: supervisor.running_pid("worker"), message="worker running")
    web = wait_until(lambda: supervisor.running_pid("web"), message="web running")

    os.kill(worker, signal.SIGKILL)

    again = wait_until(
        lambda: (pid := supervisor.running_pid("worker")) not in (None, worker) and pid,
        message="a new worker",
    )
    assert again != worker
    assert supervisor.running_pid("web") == web
    response = httpx.get(f"http://127.0.0.1:{supervisor.port}/api/v1/runs/", timeout=10)
    assert response.status_code == 401  # served, and asking for a token
    assert "exited: worker (terminated by SIGKILL; not expected)" in shared_log(supervisor.log)


def test_stopping_the_supervisor_stops_both_processes_cleanly(supervisor):
    wait_until(lambda: supervisor.running_pid("worker"), message="worker running")
    wait_until(lambda: supervisor.running_pid("web"), message="web running")
    # Running for supervisord is two seconds alive; a busy machine may still be
    # importing Django then, with no signal handler yet. Its heartbeat says it has one.
    wait_until(lambda: WorkerRow.objects.exists(), message="the worker's heartbeat")
    httpx.get(f"http://127.0.0.1:{supervisor.port}/healthz", timeout=30)

    supervisor.process.send_signal(signal.SIGTERM)

    assert supervisor.process.wait(90) == 0
    log = shared_log(supervisor.log)
    assert "stopped: worker (exit status 0)" in log
    assert "stopped: web (exit status 0)" in log
