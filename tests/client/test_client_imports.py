import subprocess
import sys


def test_the_client_its_log_batcher_and_its_command_line_import_no_django():
    script = (
        "import sys; from batchsvc_client import BatchsvcLogHandler, Client, LogBatcher; "
        "import batchsvc_client.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')))"
    )
    env = {"PATH": "/usr/bin:/bin"}  # no DJANGO_SETTINGS_MODULE either
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    )
    assert result.stdout.strip() == "[]"
