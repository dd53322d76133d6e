"""gunicorn settings for batchsvc, read by the Procfile, `make run` and the tests
(gunicorn also reads this file by itself when started from the repository root).

Threaded workers (gthread): a request whose body trickles in holds one thread, not a
whole process, so slow clients cannot starve everyone else; see the README's
"Running it in production" for the figures and for the buffering proxy that belongs
in front in production anyway.
"""

import os
from pathlib import Path

VAR_DIR = Path(os.environ.get("VAR_DIR", Path(__file__).resolve().parent / "var"))
# Before anything imports prometheus_client, which reads it then; the same directory
# settings.py chooses, so web and db_worker processes count into one place.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "prometheus"))

from prometheus_client import multiprocess  # noqa: E402

wsgi_app = "batchsvc.wsgi:application"
bind = [f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"]
worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "8"))
# A worker silent this long is killed and replaced. With threads, the worker's main
# loop keeps beating while requests run, so this bounds a hung process, not a request.
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 30
# A process takes no more connections than it has threads: the others wait in the
# listening socket for whichever process has a thread free. (gthread would otherwise
# accept up to 1000 and queue them behind its busy threads, a GET stuck behind slow
# uploads while another process idles.) A kept-alive connection would hold one of
# those places while idle, so there is none: each request brings its connection,
# and the proxy in front keeps its clients' connections alive.
worker_connections = threads
keepalive = 0
# gunicorn's runtime control socket sits at one path per user: several servers on one
# machine (tests, benchmarks, a second checkout) would take it from each other.
control_socket_disable = True
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# Our own request log line (batchsvc.ops.middleware) has the request id, route, user and
# duration; gunicorn's access log would repeat it with less.
accesslog = None
errorlog = "-"
# gunicorn's own lines (workers starting, timing out) in the format of ours.
logconfig_dict = {
    # Not passed on to the root logger too, which (Django's or gunicorn's) prints them again.
    "loggers": {"gunicorn.error": {"handlers": ["error_console"], "propagate": False}},
    "formatters": {
        "generic": {
            "()": "batchsvc.ops.logs.formatter",
            "json": os.environ.get("LOG_FORMAT", "text") == "json",
        }
    },
}


def on_starting(server):
    """Start from clean metrics: the files of processes gone since the last run go; a
    db_worker's, still running, stay."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        pid = name.removesuffix(".db").rpartition("_")[2]
        if name.endswith(".db") and pid.isdigit() and not _alive(int(pid)):
            os.remove(os.path.join(path, name))


def child_exit(server, worker):
    """A worker's counters stay counted; its live gauges go with it."""
    multiprocess.mark_process_dead(worker.pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
