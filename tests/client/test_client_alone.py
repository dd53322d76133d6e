"""The client installed alone, as an agent's build machine would: a fresh venv with
``pip install ./client`` and nothing of the server. Its packages come from the index
pip reaches (PyPI, or its cache); the venv is built once for the module."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_run
from tests.support.workers import ROOT
from traces.models import Run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def alone(tmp_path_factory) -> Path:
    """The bin directory of a fresh venv holding the client and its dependencies only."""
    venv = tmp_path_factory.mktemp("client-alone") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
         "--quiet", "--disable-pip-version-check", ROOT / "client"],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    return venv / "bin"


def commands(alone: Path, env: dict) -> list[list[str]]:
    """Every command ``batchsvc --help`` lists, as its words after ``batchsvc``."""
    done = subprocess.run(
        [alone / "batchsvc", "--help"], capture_output=True, text=True, env=env, check=True
    )
    listing = done.stdout.split("\nall commands (each with --help):\n", 1)[1]
    return [re.match(r"  batchsvc (.+?)  ", line)[1].split() for line in listing.splitlines()]


def test_the_client_alone_holds_no_django(alone, home):
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", alone / "python", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert "batchsvc-client" in names
    assert not names & {"django", "djangorestframework", "psycopg", "redis", "gunicorn"}


def test_every_command_answers_help_from_the_client_alone(alone, cli_env):
    listed = commands(alone, cli_env)
    assert len(listed) == 12
    for command in listed:
        done = subprocess.run(
            [alone / "batchsvc", *command, "--help"], capture_output=True, text=True, env=cli_env
        )
        assert done.returncode == 0, (command, done.stderr)
        assert "example:" in done.stdout


def test_runs_go_up_and_come_back_with_the_client_alone(alone, cli_env, tmp_path):
    run = make_run()
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(run) + "\n")

    uploaded = subprocess.run(
        [alone / "batchsvc", "runs", "upload", path], capture_output=True, text=True, env=cli_env
    )
    fetched = subprocess.run(
        [alone / "batchsvc", "get", "runs", run["run_id"], "--json"],
        capture_output=True,
        text=True,
        env=cli_env,
    )

    assert uploaded.returncode == 0, uploaded.stderr
    assert Run.objects.get().run_id == run["run_id"]
    assert json.loads(fetched.stdout)["results"][0]["data"]["event_id"] == run["event_id"]
