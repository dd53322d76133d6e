"""What a batch is waiting for (``waiting_for`` in its detail), with real ``db_worker``
processes: the situations are made by the workers, not written into the database."""

import pytest

from batches.models import InteractionStatus
from batches.models import Worker as WorkerRow
from tests.batches.factories import finished, make_batch
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def two_conversations(turns: int) -> list[tuple[str, str]]:
    # Within a conversation the running mark moves from row to row in one
    # transaction, so while it runs a row of it is always running.
    return [(f"{chat}{n}", chat) for chat in ("a", "b") for n in range(turns)]


def waiting_for(api, batch) -> dict | None:
    return api.get(f"/api/v1/batches/{batch.pk}").json()["waiting_for"]


def test_a_batch_running_as_many_conversations_as_its_concurrency_waits_for_the_cap(
    api, alice, start_worker
):
    batch = make_batch(alice, two_conversations(8), options={"delay": 0.2}, concurrency=1)
    start_worker(BATCH_CONCURRENCY=4)
    wait_until(
        lambda: batch.interactions.filter(status=InteractionStatus.RUNNING).exists(),
        message="a running row",
    )

    waiting = waiting_for(api, batch)

    assert waiting == {
        "reason": "concurrency",
        "message": "1 of its conversations run, as many as its concurrency (1) allows; the "
        "next starts when one ends.",
        "until": None,
    }
    wait_until(lambda: finished(batch.pk), message="batch end")
    assert waiting_for(api, batch) is None


def test_a_batch_whose_worker_threads_are_all_busy_elsewhere_waits_for_a_worker(
    api, alice, bob, start_worker
):
    busy = make_batch(alice, [(f"q{n}", "long") for n in range(30)], options={"delay": 0.1})
    start_worker(BATCH_CONCURRENCY=1)
    wait_until(
        lambda: busy.interactions.filter(status=InteractionStatus.SUCCEEDED).exists(),
        message="the first batch under way",
    )
    later = make_batch(bob, [("one", "")], options={"delay": 0.1})
    api.force_authenticate(bob)

    waiting = waiting_for(api, later)

    assert WorkerRow.objects.count() == 1
    assert waiting["reason"] == "worker"
    assert waiting["message"] == (
        "Waiting for a free worker thread: the live workers run as many conversations as "
        "they have threads (1), 0 of them its own (its concurrency allows 5)."
    )
    wait_until(lambda: finished(later.pk), message="the second batch's end")


def test_a_batch_whose_conversations_all_run_waits_for_nothing(api, alice, start_worker):
    batch = make_batch(alice, [(f"q{n}", "only") for n in range(20)], options={"delay": 0.1})
    start_worker(BATCH_CONCURRENCY=2)
    wait_until(
        lambda: batch.interactions.filter(status=InteractionStatus.SUCCEEDED).exists(),
        message="the batch under way",
    )

    assert waiting_for(api, batch) is None
    wait_until(lambda: finished(batch.pk), message="batch end")
