"""PostgreSQL going away under a running service: requests answer 503 with
Retry-After and work again as soon as it is back; a worker rides through a 30 s
outage and finishes its batch with every item run once.

Each test runs against a PostgreSQL cluster of its module's own (tests/e2e/postgres.py),
stopped and started at will, or cut off behind a TCP proxy; the machine's shared
server is never touched, and these tests run on SQLite runs of the suite too.
"""

import contextlib
import re
import socket
import time
import uuid

import httpx
import pytest

from tests.batches.factories import csv_bytes
from tests.conftest import make_run
from tests.support.postgres import Postgres
from tests.support.proxy import Proxy
from tests.support.servers import Gunicorn, manage
from tests.support.waiting import wait_until
from tests.support.workers import Worker

UNAVAILABLE = "The database is unavailable; try again in 5 seconds."
STAFF = ("staff", "staff-password")


@pytest.fixture(scope="module")
def postgres():
    """A migrated template database with a staff user and their token."""
    server = Postgres().start()
    try:
        server.sql("CREATE DATABASE template_batchsvc")
        url = server.url("template_batchsvc")
        manage("migrate", "--noinput", database_url=url)
        manage(
            "createsuperuser",
            "--noinput",
            f"--username={STAFF[0]}",
            "--email=staff@example.com",
            database_url=url,
            DJANGO_SUPERUSER_PASSWORD=STAFF[1],
        )
        manage("bootstrap", database_url=url)
        yield server
    finally:
        server.destroy()


@pytest.fixture
def database(postgres):
    """A fresh database of that cluster, a copy of the template."""
    name = f"outage_{uuid.uuid4().hex[:12]}"
    postgres.sql(f"CREATE DATABASE {name} TEMPLATE template_batchsvc")
    return name


@pytest.fixture
def start_web():
    """``start_web(database_url, **env)``: gunicorn (gunicorn.conf.py, one process)
    against that database, stopped after the test."""
    with contextlib.ExitStack() as servers:
        yield lambda database_url, **env: servers.enter_context(
            Gunicorn(DATABASE_URL=database_url, WEB_WORKERS="1", **env)
        )


def api_client(web, token):
    return httpx.Client(base_url=web.url, headers={"Authorization": f"Token {token}"}, timeout=20)


def admin_login(browser: httpx.Client, username: str, password: str) -> httpx.Response:
    """Log in to the admin as a browser does: the form, its CSRF token, the POST."""
    form = browser.get("/admin/login/")
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    return browser.post(
        "/admin/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": csrf},
    )


def assert_unavailable(response: httpx.Response, *, api: bool = True) -> None:
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    if api:
        body = response.json()
        assert body.pop("request_id") == response.headers["X-Request-ID"]
        assert body == {"error": UNAVAILABLE}
    else:
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.text == UNAVAILABLE


def test_requests_answer_503_while_postgresql_restarts_and_the_next_one_after_works(
    postgres, database, start_web
):
    web = start_web(postgres.url(database))
    (token,) = postgres.sql("SELECT key FROM authtoken_token", database)[0]
    api = api_client(web, token)
    browser = httpx.Client(base_url=web.url, timeout=20)
    assert api.get("/api/v1/runs/").status_code == 200  # its connection is kept
    assert admin_login(browser, *STAFF).status_code == 302
    run = make_run()

    postgres.stop()
    try:
        assert_unavailable(api.get("/api/v1/runs/"))
        assert_unavailable(api.post("/api/v1/runs/batch", json={"runs": [run]}))
        assert_unavailable(browser.get("/admin/"), api=False)  # the session, outside DRF
        assert_unavailable(admin_login(httpx.Client(base_url=web.url), *STAFF), api=False)
    finally:
        postgres.start()

    assert api.get("/api/v1/runs/").json()["results"] == []  # the refused run is not there
    assert api.post("/api/v1/runs/batch", json={"runs": [run]}).json()["created"] == 1
    assert browser.get("/admin/").status_code == 200


def test_a_request_answers_503_after_the_connect_timeout_when_postgresql_never_answers(
    start_web,
):
    # A port that takes connections and never speaks: a host gone silent, where
    # without a connect timeout a request waits for the TCP timeout, minutes.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    try:
        port = silent.getsockname()[1]
        web = start_web(f"postgres://postgres@127.0.0.1:{port}/batchsvc", DB_CONNECT_TIMEOUT="2")
        client = httpx.Client(base_url=web.url, timeout=15)
        browser = httpx.Client(base_url=web.url, timeout=15, cookies={"sessionid": "s" * 32})

        assert_unavailable(client.get("/api/v1/runs/", headers={"Authorization": "Token abc"}))
        assert_unavailable(browser.get("/admin/"), api=False)
    finally:
        silent.close()


def batch_rows(database: str, postgres: Postgres) -> dict:
    rows = postgres.sql(
        "SELECT id, chat_id, row_number, status, attempts, output "
        "FROM batches_interaction ORDER BY row_number",
        database,
    )
    return {
        pk: dict(zip(("chat", "row", "status", "attempts", "output"), rest, strict=True))
        for pk, *rest in rows
    }


def test_a_worker_rides_through_a_30_s_outage_and_finishes_its_batch_each_item_once(
    postgres, database, tmp_path
):
    chats = "abcd"
    upload = tmp_path / "questions.csv"
    upload.write_bytes(csv_bytes([(f"q{n}", chats[n % 4]) for n in range(60)]))
    manage(
        "import_batch",
        upload,
        "--owner=staff",
        '--options={"delay": 0.1}',
        database_url=postgres.url(database),
    )
    proxy = Proxy(postgres.url(database)).start()
    worker = Worker(
        DATABASE_URL=postgres.url(database, port=proxy.port), BATCH_CONCURRENCY=2
    ).start()

    def succeeded():
        return [r for r in batch_rows(database, postgres).values() if r["status"] == "succeeded"]

    try:
        wait_until(lambda: len(succeeded()) >= 8, message="a few items done")
        proxy.stop()
        cut_at = time.monotonic()
        done_before = len(succeeded())
        while time.monotonic() - cut_at < 30:
            assert worker.process.poll() is None, "the worker exited during the outage"
            time.sleep(0.5)
        assert len(succeeded()) <= done_before + 2  # at most the items in flight
        assert "the database is unavailable" in worker.output()
        proxy.start()

        def finished():
            status = postgres.sql(
                "SELECT status, processed_items, failed_items FROM batches_batch", database
            )[0]
            return status if status[0] not in ("queued", "processing") else None

        status = wait_until(finished, timeout=120, message="batch end after the outage")
        wait_until(lambda: task_statuses(database, postgres) == {"SUCCESSFUL"})
        assert worker.process.poll() is None
        log = worker.output()
    finally:
        proxy.stop()
        worker.stop()

    assert status == ("processed", 60, 0)
    rows = batch_rows(database, postgres)
    assert {(r["status"], r["attempts"]) for r in rows.values()} == {("succeeded", 1)}
    for chat in chats:  # none skipped: every conversation's turns follow each other
        turns = [r["output"]["turn"] for r in rows.values() if r["chat"] == chat]
        assert turns == list(range(1, 16))
    assert "the database is back" in log


def task_statuses(database: str, postgres: Postgres) -> set[str]:
    rows = postgres.sql("SELECT status FROM django_tasks_database_dbtaskresult", database)
    return {status for (status,) in rows}


def test_an_idle_worker_waits_out_an_outage_and_takes_the_next_batch(postgres, database, tmp_path):
    proxy = Proxy(postgres.url(database)).start()
    worker = Worker(DATABASE_URL=postgres.url(database, port=proxy.port), LOG_LEVEL="INFO")
    worker.start()
    upload = tmp_path / "questions.csv"
    upload.write_bytes(csv_bytes([(f"q{n}", "") for n in range(5)]))

    def retries() -> int:
        return len(re.findall(r"Worker \w+: the database is unavailable", worker.output()))

    try:
        wait_until(lambda: "Starting worker" in worker.output(), message="worker start")
        proxy.stop()
        wait_until(lambda: retries() >= 3, message="the worker's loop trying again")
        assert worker.process.poll() is None
        proxy.start()
        manage("import_batch", upload, "--owner=staff", database_url=postgres.url(database))
        wait_until(
            lambda: postgres.sql("SELECT status FROM batches_batch", database)[0] == ("processed",),
            message="the batch queued after the outage processed",
        )
        assert worker.process.poll() is None
    finally:
        proxy.stop()
        worker.stop()
