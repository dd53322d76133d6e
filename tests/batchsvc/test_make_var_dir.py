"""`make run` and `make secret-key` keep the secret key where the settings read it:
under VAR_DIR, wherever that is."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def make(*args: str) -> str:
    env = {key: value for key, value in os.environ.items() if key != "VAR_DIR"}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_make_secret_key_writes_the_key_the_settings_read_under_var_dir(tmp_path):
    var_dir = tmp_path / "elsewhere"
    make("secret-key", f"VAR_DIR={var_dir}")
    key_file = var_dir / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    read = subprocess.run(
        [sys.executable, "-c", "from batchsvc import settings; print(settings.SECRET_KEY)"],
        cwd=ROOT,
        env={**os.environ, "VAR_DIR": str(var_dir), "SECRET_KEY": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert read == key_file.read_text().strip()


def test_make_run_generates_the_key_under_var_dir_before_starting(tmp_path):
    var_dir = tmp_path / "elsewhere"
    planned = make("-n", "run", f"VAR_DIR={var_dir}")
    assert f"> {var_dir}/secret_key.tmp" in planned
    assert planned.index(f"{var_dir}/secret_key") < planned.index("manage.py migrate")
