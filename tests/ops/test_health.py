import subprocess
import sys

import httpx
import pytest
from django.db import connection

from batches.engine.heartbeats import Heartbeat
from batches.models import Worker
from tests.batches.factories import make_batch
from tests.support.proxy import Proxy
from tests.support.servers import ROOT, Gunicorn, free_port
from tests.support.waiting import wait_until
from tests.support.workers import Worker as WorkerProcess
from tests.support.workers import database_url

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_touching_the_database(anonymous, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = anonymous.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_when_every_check_passes(anonymous, trace_root):
    response = anonymous.get("/readyz", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {
            "database": "OK",
            "migrations": "OK",
            "trace_storage": "OK",
            "workers": "OK",
        },
    }
    assert list(trace_root.rglob("*")) in ([], [trace_root / "health_check_storage_test"])


def test_readyz_is_503_when_batches_wait_and_no_worker_is_alive(anonymous, alice, trace_root):
    make_batch(alice, [("q1", "")])
    response = anonymous.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["workers"] == (
        "Unavailable: batches are waiting and no worker has sent a heartbeat "
        "within BATCH_STALE_AFTER"
    )
    assert body["checks"]["database"] == "OK"
    assert body["request_id"] == response["X-Request-ID"]


def test_readyz_is_200_while_batches_wait_for_a_worker_that_beats(anonymous, alice, trace_root):
    make_batch(alice, [("q1", "")])
    heartbeat = Heartbeat()
    heartbeat.beat()
    assert anonymous.get("/readyz").status_code == 200
    heartbeat.stop()  # a worker stopping removes its row: nobody is left
    assert anonymous.get("/readyz").status_code == 503


def test_readyz_is_503_when_the_trace_storage_cannot_be_written(anonymous, settings, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    settings.STORAGES = {
        **settings.STORAGES,
        "traces": {**settings.STORAGES["traces"], "OPTIONS": {"location": str(blocker / "x")}},
    }
    response = anonymous.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["trace_storage"] != "OK"
    assert response.json()["checks"]["database"] == "OK"


@pytest.mark.django_db(transaction=True)
def test_a_running_db_worker_beats_and_removes_its_row_when_it_stops():
    worker = WorkerProcess().start()
    try:
        row = wait_until(lambda: Worker.objects.first(), timeout=30, message="a heartbeat")
        wait_until(
            lambda: Worker.objects.get(pk=row.pk).beat_at > row.beat_at,
            timeout=30,
            message="a second heartbeat",
        )
    finally:
        worker.stop()
    assert not Worker.objects.exists()


def test_readyz_is_503_and_healthz_200_when_the_database_is_unreachable():
    closed = f"postgres://batchsvc@127.0.0.1:{free_port()}/batchsvc"
    with Gunicorn(DATABASE_URL=closed) as server:
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        response = httpx.get(f"{server.url}/readyz", timeout=30)
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"].startswith("Unavailable")
    assert checks["migrations"] == "Unavailable: the database cannot be read"
    assert checks["workers"] == "Unavailable: the database cannot be read"
    assert checks["trace_storage"] == "OK"
    assert "127.0.0.1" not in response.text


def test_readyz_is_503_until_the_migrations_are_applied(tmp_path):
    database = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    with Gunicorn(DATABASE_URL=database, VAR_DIR=str(tmp_path)) as server:
        response = httpx.get(f"{server.url}/readyz", timeout=30)
        assert response.status_code == 503
        assert response.json()["checks"]["migrations"].endswith("migrations are not applied")
        migrate_in(database, tmp_path)
        assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200


def migrate_in(database: str, var_dir) -> None:
    """``manage.py migrate`` against another database, in its own process."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env={**Gunicorn().env, "DATABASE_URL": database, "VAR_DIR": str(var_dir)},
        check=True,
    )


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_readyz_turns_503_while_the_database_is_cut_off_and_200_once_it_is_back():
    settings = connection.settings_dict
    proxy = Proxy(f"tcp://{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}").start()
    through_proxy = database_url().replace(
        f"@{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/",
        f"@127.0.0.1:{proxy.port}/",
    )
    try:
        with Gunicorn(DATABASE_URL=through_proxy) as server:
            assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200
            proxy.stop()
            response = httpx.get(f"{server.url}/readyz", timeout=30)
            assert response.status_code == 503
            assert response.json()["checks"]["database"].startswith("Unavailable")
            assert httpx.get(f"{server.url}/healthz").status_code == 200
            proxy.start()
            assert httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200
    finally:
        proxy.stop()
