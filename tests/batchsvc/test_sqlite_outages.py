"""SQLite refusing work (locked past the busy timeout, read-only, full, not there)
is answered 503 with Retry-After, or 507 when full, on every route; once it takes
work again, so does the very next request."""

import logging
import sqlite3

import pytest
from django.db import connection
from django.test import Client

from tests.conftest import error_body, make_run

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's own failures"),
]

UNAVAILABLE = {"error": "The database is unavailable; try again in 5 seconds."}


@pytest.fixture
def database():
    """This thread's SQLite connection settings, restored (and the connection
    closed) after the test; ``database.reopen(name)`` opens it again as ``name``."""

    class Database:
        settings = connection.settings_dict
        name = settings["NAME"]
        options = dict(settings["OPTIONS"])

        def reopen(self, name):
            connection.close()
            self.settings["NAME"] = name

    yield Database()
    connection.close()
    Database.settings["NAME"] = Database.name
    Database.settings["OPTIONS"] = Database.options


@pytest.fixture
def staff_browser(staff):
    browser = Client(raise_request_exception=False)
    browser.force_login(staff)
    return browser


def post_runs(api, count=1, **overrides):
    runs = [make_run(**overrides) for _ in range(count)]
    return api.post("/api/v1/runs/batch", {"runs": runs}, format="json")


def assert_unavailable(response, *, api=True):
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    if api:
        assert error_body(response) == UNAVAILABLE
    else:
        assert response["Content-Type"].startswith("text/plain")
        assert response.content.decode() == UNAVAILABLE["error"]


def test_a_database_locked_past_the_busy_timeout_is_a_503_until_it_is_released(
    api, staff, database
):
    database.settings["OPTIONS"] = {**database.options, "timeout": 0.1}
    database.reopen(database.name)
    locker = sqlite3.connect(database.name, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another process writing, for ever
    try:
        assert_unavailable(post_runs(api))
        login = Client(raise_request_exception=False).post(
            "/admin/login/", {"username": "staff", "password": "staff-password"}
        )
        assert_unavailable(login, api=False)
    finally:
        locker.rollback()
        locker.close()

    assert post_runs(api).status_code == 201


def test_a_read_only_database_file_is_a_503_on_writes_and_still_answers_reads(api, database):
    database.reopen(f"file:{database.name}?mode=ro")

    assert_unavailable(post_runs(api))
    assert api.get("/api/v1/runs/").status_code == 200

    database.reopen(database.name)
    assert post_runs(api).status_code == 201


@pytest.mark.urls("tests.batchsvc.urls_session_write")
def test_a_session_that_cannot_be_saved_after_the_view_is_a_503(staff_browser, database):
    database.reopen(f"file:{database.name}?mode=ro")

    response = staff_browser.get("/remember/")

    assert_unavailable(response, api=False)
    database.reopen(database.name)
    assert staff_browser.get("/remember/").status_code == 200


def test_a_database_that_cannot_be_opened_is_a_503_for_the_api_and_the_admin(
    api, staff_browser, database, tmp_path
):
    database.reopen(f"file:{tmp_path / 'missing' / 'db.sqlite3'}?mode=ro")

    assert_unavailable(api.get("/api/v1/runs/"))  # the token is looked up in DRF
    assert_unavailable(staff_browser.get("/admin/"), api=False)  # the session, outside

    database.reopen(database.name)
    assert api.get("/api/v1/runs/").status_code == 200
    assert staff_browser.get("/admin/").status_code == 200


@pytest.fixture
def access_log(caplog):
    """caplog, seeing the request lines too (their logger does not propagate)."""
    requests = logging.getLogger("batchsvc.requests")
    requests.addHandler(caplog.handler)
    caplog.set_level(logging.INFO)
    yield caplog
    requests.removeHandler(caplog.handler)


@pytest.mark.urls("tests.batchsvc.urls_session_write")
def test_each_503_is_logged_once_as_a_warning_naming_its_cause_with_no_traceback(
    api, staff_browser, database, access_log
):
    database.reopen(f"file:{database.name}?mode=ro")

    assert_unavailable(post_runs(api))
    assert_unavailable(staff_browser.get("/remember/"), api=False)  # raised after the view

    lines = [(r.levelname, r.getMessage()) for r in access_log.records]
    cause = (
        "The database is unavailable; try again in 5 seconds. "
        "(OperationalError: attempt to write a readonly database)"
    )
    assert lines == [
        ("WARNING", f"POST /api/v1/runs/batch: {cause}"),
        ("INFO", "POST /api/v1/runs/batch 503"),
        ("WARNING", f"GET /remember/: {cause}"),
        ("INFO", "GET /remember/ 503"),
    ]
    assert not any(r.exc_info for r in access_log.records)


def test_a_full_database_is_a_507_without_retry_after(api, database):
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA page_count")
        (pages,) = cursor.fetchone()
        cursor.execute("PRAGMA freelist_count")
        (free,) = cursor.fetchone()
        # No page beyond those the file has: the batch below needs more than the free ones.
        cursor.execute(f"PRAGMA max_page_count = {pages}")
    assert free < 500

    response = post_runs(api, count=100, context_json={"blob": "x" * 30_000})

    assert response.status_code == 507
    assert "Retry-After" not in response
    assert error_body(response) == {
        "error": "The database is out of space (its disk is full), so this was not stored."
    }
    assert api.get("/api/v1/runs/").json()["results"] == []
    assert post_runs(api).status_code == 201  # a new connection, without the limit
