import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage_check(var_dir: Path, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**environ, "VAR_DIR": str(var_dir), **env},
        capture_output=True,
        text=True,
    )


def test_it_refuses_to_start_without_a_key_when_debug_is_off(tmp_path):
    result = manage_check(tmp_path)
    assert result.returncode != 0
    assert "No secret key: set SECRET_KEY in the environment" in result.stderr


def test_it_uses_the_generated_key_without_a_warning(tmp_path):
    (tmp_path / "secret_key").write_text("a-generated-key-that-is-long-enough-to-be-random\n")
    result = manage_check(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "W001" not in result.stderr + result.stdout


def test_it_warns_when_the_development_key_is_set_with_debug_off(tmp_path):
    from django.conf import settings

    result = manage_check(tmp_path, SECRET_KEY=settings.DEVELOPMENT_SECRET_KEY)
    assert result.returncode != 0
    assert "batchsvc.W001" in result.stderr
