"""Waiting out a database that refuses work (batchsvc.ops.outages), on a real SQLite
database whose write lock another connection holds."""

import sqlite3
import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection, transaction

from batchsvc.ops.outages import NEW_OUTAGE_AFTER, Backoff, retry_while_unavailable

sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="locks SQLite's file")


@pytest.fixture
def locked(transactional_db):
    """SQLite's write lock held by another connection (``locked.release()`` lets go),
    and a busy timeout of 50 ms for this thread's, so that writes fail fast."""
    options = connection.settings_dict["OPTIONS"]
    connection.settings_dict["OPTIONS"] = {**options, "timeout": 0.05}
    connection.close()
    locker = sqlite3.connect(
        connection.settings_dict["NAME"], isolation_level=None, check_same_thread=False
    )
    locker.execute("BEGIN IMMEDIATE")

    class Lock:
        released = threading.Event()

        def release(self):
            if not self.released.is_set():
                self.released.set()
                locker.rollback()

    lock = Lock()
    yield lock
    lock.release()
    locker.close()
    connection.settings_dict["OPTIONS"] = options
    connection.close()


def create_user(name):
    return get_user_model().objects.create_user(name)


def test_backoff_doubles_each_wait_up_to_its_cap():
    backoff = Backoff(first=1, cap=4)

    waits = [backoff.next() for _ in range(5)]

    for wait, full in zip(waits, [1, 2, 4, 4, 4], strict=True):
        assert 0.75 * full <= wait <= full  # less a little jitter


def test_backoff_starts_over_after_a_quiet_spell():
    backoff = Backoff(first=1, cap=4)
    for _ in range(3):
        backoff.next()
    backoff.failed_at = time.monotonic() - NEW_OUTAGE_AFTER - 1

    assert backoff.next() <= 1


@sqlite_only
def test_a_step_is_tried_again_until_the_database_takes_it(locked, caplog):
    threading.Timer(1.0, locked.release).start()

    user = retry_while_unavailable(lambda: create_user("carol"), what="Creating carol")

    assert get_user_model().objects.get(username="carol") == user
    unavailable = (
        "Creating carol: the database is unavailable (OperationalError: database is locked)"
    )
    assert unavailable in caplog.text
    assert "Creating carol: the database is back after" in caplog.text


@sqlite_only
def test_a_step_is_not_tried_again_once_its_stop_is_set(locked):
    stop = threading.Event()
    stop.set()

    with pytest.raises(OperationalError, match="database is locked"):
        retry_while_unavailable(lambda: create_user("carol"), what="Creating carol", stop=stop)


@sqlite_only
def test_a_step_whose_write_went_through_before_it_failed_is_not_run_again(locked):
    runs = []

    def step():
        runs.append(1)
        locked.release()
        user = create_user("carol")  # committed
        locker = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
        try:
            with transaction.atomic():  # fails: the write went through, the step did not
                create_user("dave")
        finally:
            locker.close()
        return user

    carol = retry_while_unavailable(
        step,
        what="Creating carol",
        landed=lambda: get_user_model().objects.filter(username="carol").first(),
    )

    assert runs == [1]
    assert carol.username == "carol"
    assert not get_user_model().objects.filter(username="dave").exists()
