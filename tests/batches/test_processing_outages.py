"""A batch run waiting out a database that refuses work, in this process on a real
database; the worker process through a 30 s PostgreSQL outage is in
tests/e2e/test_database_outages.py."""

import sqlite3
import threading

import pytest
from django.db import connection
from django.utils import timezone

from batches.engine.claims import Claims, fair_order
from batches.engine.conversations import Conversation
from batches.engine.counters import Progress
from batches.engine.worker import batch_process
from batches.models import BatchStatus, InteractionStatus
from batches.processors.echo import EchoProcessor
from tests.batches.factories import make_batch

pytestmark = pytest.mark.django_db(transaction=True)
sqlite_only = pytest.mark.skipif(connection.vendor != "sqlite", reason="locks SQLite's file")


class LockingProcessor(EchoProcessor):
    """On "lock", another process takes SQLite's write lock for a second and a
    half, just as this item's answer is to be stored."""

    def process(self, input, history):
        if input["question"] == "lock":
            locker = sqlite3.connect(
                connection.settings_dict["NAME"], isolation_level=None, check_same_thread=False
            )
            locker.execute("BEGIN IMMEDIATE")
            threading.Timer(1.5, lambda: (locker.rollback(), locker.close())).start()
        return super().process(input, history)


@pytest.fixture
def short_busy_timeout(settings):
    """SQLite gives up waiting for its lock after 50 ms instead of the 30 s default."""
    options = connection.settings_dict["OPTIONS"]
    connection.settings_dict["OPTIONS"] = {**options, "timeout": 0.05}
    connection.close()
    yield
    connection.settings_dict["OPTIONS"] = options
    connection.close()


@sqlite_only
def test_an_item_whose_answer_meets_a_locked_database_is_stored_once_it_is_free(
    alice, settings, short_busy_timeout, caplog
):
    settings.BATCH_PROCESSORS = {"locking": f"{__name__}.LockingProcessor"}
    settings.BATCH_CONCURRENCY = 1
    batch = make_batch(alice, [("one", "a"), ("lock", "a"), ("three", "a")], processor="locking")

    result = batch_process(batch_id=batch.pk)

    assert (result["status"], result["processed_items"], result["failed_items"]) == (
        BatchStatus.PROCESSED,
        3,
        0,
    )
    items = {i.input["question"]: i for i in batch.interactions.all()}
    assert [items[q].output["turn"] for q in ("one", "lock", "three")] == [1, 2, 3]
    assert {i.attempts for i in items.values()} == {1}
    assert "the database is unavailable (OperationalError: database is locked)" in caplog.text
    assert "the database is back" in caplog.text


def claims_of(batch) -> Claims:
    claims = Claims(Progress(announced=batch.pk))
    claims.checked(batch.pk, True)
    return claims


def take(claims: Claims, token: str):
    return claims.take(fair_order()[0], token)


def test_a_claim_committed_before_its_answer_was_lost_is_found_again_by_its_token(alice):
    batch = make_batch(alice, [("one", "a"), ("two", "a"), ("other", "b")])
    run = claims_of(batch)
    claim = take(run, "worker/0")

    again = claims_of(batch).taken("worker/0")

    assert (again.head, again.rest, again.history) == (claim.head, claim.rest, claim.history)
    assert [item.input["question"] for item in [again.head, *again.rest]] == ["one", "two"]
    assert run.taken("worker/1") is None  # that thread holds nothing


def test_an_end_committed_before_its_answer_was_lost_is_recognised_not_recorded_twice(alice):
    batch = make_batch(alice, [("one", "a"), ("two", "a"), ("three", "a")])
    claims = claims_of(batch)
    claim = take(claims, "worker/0")
    run = Conversation(claim, claims.progress)
    one, two = claim.head, claim.rest[0]
    assert run.recorded(one, two) is None  # not ended yet: record it

    assert run.record(one, {"text": "1"}, "", two, timezone.now()) == (True, True)

    assert run.recorded(one, two) == (True, True)
    claim.token = "worker/1"
    assert run.recorded(one, two) is None  # another thread's token
    rows = {i.input["question"]: i for i in batch.interactions.all()}
    assert (rows["one"].status, rows["one"].attempts) == (InteractionStatus.SUCCEEDED, 1)
    assert (rows["two"].status, rows["two"].attempts) == (InteractionStatus.RUNNING, 1)
