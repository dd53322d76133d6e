"""Workers shared fairly between batches and owners, by real ``db_worker`` processes.
Orders and counts are asserted, never wall-clock times."""

import pytest
from django_tasks_db.models import DBTaskResult

from batches.models import ACTIVE_BATCH, Batch, InteractionStatus
from batches.models import Worker as WorkerRow
from tests.batches.factories import finished, make_batch
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def single_rows(count: int, prefix: str = "q") -> list[tuple[str, str]]:
    return [(f"{prefix}{n}", "") for n in range(count)]


def most_at_once(batch) -> int:
    """The most rows of the batch that were running at the same moment."""
    events = []
    for started, ended in batch.interactions.values_list("started_at", "finished_at"):
        events += [(started, 1), (ended, -1)]
    running = peak = 0
    for _, change in sorted(events, key=lambda event: (event[0], event[1])):
        running += change
        peak = max(peak, running)
    return peak


def test_a_small_batch_uploaded_behind_a_big_slow_one_by_another_user_finishes_first(
    alice, bob, start_worker
):
    big = make_batch(alice, single_rows(60), options={"delay": 0.2})
    start_worker(BATCH_CONCURRENCY=2)
    wait_until(lambda: big.interactions.filter(status="succeeded").exists(), message="a start")

    small = make_batch(bob, single_rows(4), options={"delay": 0.2})
    done = wait_until(lambda: finished(small.pk), message="small batch end")

    assert (done.status, done.processed_items) == ("processed", 4)
    assert Batch.objects.get(pk=big.pk).status in ACTIVE_BATCH
    assert big.interactions.filter(status=InteractionStatus.PENDING).count() > 20
    wait_until(lambda: finished(big.pk), message="big batch end")
    assert Batch.objects.get(pk=big.pk).processed_items == 60


def test_one_owners_many_batches_do_not_starve_another_owners_one(alice, bob, start_worker):
    many = [make_batch(alice, single_rows(10), options={"delay": 0.1}) for _ in range(5)]
    one = make_batch(bob, single_rows(10), options={"delay": 0.1})
    start_worker(BATCH_CONCURRENCY=2)

    done = wait_until(lambda: finished(one.pk), message="bob's batch end")

    assert (done.status, done.processed_items) == ("processed", 10)
    still = Batch.objects.filter(pk__in=[b.pk for b in many], status__in=ACTIVE_BATCH)
    assert still.count() >= 4  # her oldest first, while bob had his share
    for batch in many:
        wait_until(lambda batch=batch: finished(batch.pk), message="alice's batch end")
    assert {Batch.objects.get(pk=b.pk).processed_items for b in many} == {10}


def test_one_thread_takes_turns_between_owners(alice, bob, start_worker):
    first = make_batch(alice, single_rows(20), options={"delay": 0.05})
    second = make_batch(bob, single_rows(5), options={"delay": 0.05})
    start_worker(BATCH_CONCURRENCY=1)

    ended = wait_until(lambda: finished(second.pk), message="bob's batch end")

    # Counted at bob's end, not when this test looks: a loaded machine looks late.
    before = first.interactions.filter(
        status=InteractionStatus.SUCCEEDED, finished_at__lte=ended.finished_at
    )
    assert before.count() <= 6
    wait_until(lambda: finished(first.pk), message="alice's batch end")


def test_a_batch_never_runs_more_conversations_at_once_than_its_concurrency(alice, start_worker):
    capped = make_batch(alice, single_rows(16), options={"delay": 0.2}, concurrency=2)
    start_worker(BATCH_CONCURRENCY=3)
    start_worker(BATCH_CONCURRENCY=3)

    done = wait_until(lambda: finished(capped.pk), message="batch end")

    assert (done.status, done.processed_items) == ("processed", 16)
    assert most_at_once(capped) == 2


def test_a_high_priority_batch_runs_before_its_owners_older_normal_one(alice, start_worker):
    older = make_batch(alice, single_rows(12), options={"delay": 0.1})
    urgent = make_batch(alice, single_rows(4), options={"delay": 0.1}, priority="high")
    start_worker(BATCH_CONCURRENCY=1)

    wait_until(lambda: finished(urgent.pk), message="urgent batch end")

    assert older.interactions.filter(status=InteractionStatus.SUCCEEDED).count() <= 1
    wait_until(lambda: finished(older.pk), message="older batch end")


def test_two_workers_share_every_owners_batches_without_running_an_item_twice(
    alice, bob, start_worker
):
    start_worker(BATCH_CONCURRENCY=3)
    start_worker(BATCH_CONCURRENCY=3)
    wait_until(lambda: WorkerRow.objects.count() == 2, message="two live workers")
    batches = [
        make_batch(owner, single_rows(30, owner.username), options={"delay": 0.1})
        for owner in (alice, bob)
    ]

    for batch in batches:
        done = wait_until(lambda batch=batch: finished(batch.pk), message="batch end")
        assert (done.status, done.processed_items) == ("processed", 30)
        assert set(batch.interactions.values_list("attempts", flat=True)) == {1}
    tokens = {
        claim.split("/")[0]
        for batch in batches
        for claim in batch.interactions.values_list("claimed_by", flat=True)
    }
    workers = DBTaskResult.objects.filter(pk__in=tokens).values_list("worker_ids", flat=True)
    assert len({ids[-1] for ids in workers}) == 2
