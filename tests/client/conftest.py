"""Fixtures for the ``batchsvc`` command line: the installed command, run as a
subprocess against the live server, in a home directory of its own."""

import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import make_run
from tests.support.waiting import WAIT

# The console script pip installed beside this interpreter (make install).
BATCHSVC = Path(sys.executable).with_name("batchsvc")


@dataclass
class Result:
    returncode: int
    stdout_bytes: bytes
    stderr: str

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", "replace")

    @property
    def sentence(self) -> str:
        """The one line a failed command printed on standard error, checked to be
        that: one line, no traceback."""
        assert "Traceback" not in self.stderr
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1, self.stderr
        return lines[0]


def clean_environment(home: Path) -> dict:
    """This process's environment without the command's own variables, with ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BATCHSVC_", "XDG_"))}
    return {**env, "HOME": str(home)}


@pytest.fixture
def home(tmp_path):
    """The command's home directory: where its config and state files go."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def cli_env(live_server, token, home):
    """The environment the command runs in: the live server and alice's token."""
    env = clean_environment(home)
    return {**env, "BATCHSVC_URL": live_server.url, "BATCHSVC_TOKEN": token}


@pytest.fixture
def cli(cli_env, tmp_path):
    """``cli(*args, input=b"", env={...})``: run the installed batchsvc to its end
    (a Result), standard input and output being pipes, not a terminal."""

    def run(*args, input: bytes | str = b"", env: dict | None = None, timeout=120) -> Result:
        data = input.encode() if isinstance(input, str) else input
        done = subprocess.run(
            [str(BATCHSVC), *args],
            input=data,
            capture_output=True,
            env={**cli_env, **(env or {})},
            cwd=tmp_path,
            timeout=timeout,
        )
        return Result(done.returncode, done.stdout, done.stderr.decode("utf-8", "replace"))

    return run


class Running:
    """The installed batchsvc running with piped standard input and output; its
    output lines are read by a thread, so that reading one can time out."""

    def __init__(self, args, env, cwd):
        self.process = subprocess.Popen(
            [str(BATCHSVC), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)

    def write(self, data: bytes) -> None:
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def close_input(self) -> None:
        self.process.stdin.close()

    def readline(self, timeout: float = WAIT) -> str:
        try:
            return self.lines.get(timeout=timeout).decode()
        except queue.Empty:
            raise AssertionError(f"no line from batchsvc within {timeout} s") from None

    def wait(self, timeout: float = WAIT) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for stream in (self.process.stdin, self.process.stderr):
            stream.close()


@pytest.fixture
def start_cli(cli_env, tmp_path):
    """``start_cli(*args)``: the installed batchsvc running (see :class:`Running`),
    killed after the test if it is still running."""
    running: list[Running] = []
    yield lambda *args: running.append(Running(args, cli_env, tmp_path)) or running[-1]
    for process in running:
        process.stop()


@pytest.fixture
def batchsvc() -> Path:
    """The installed command's path, for pipelines a shell runs."""
    return BATCHSVC


@pytest.fixture
def run_id(api):
    """The run_id of a run alice stored through the API."""
    run = make_run()
    assert api.post("/api/v1/runs/", run, format="json").status_code == 201
    return run["run_id"]
