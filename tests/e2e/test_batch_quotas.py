"""An owner's running-items quota held by a real ``db_worker`` against a stub model
API on 127.0.0.1: their items run one at a time while another owner's take every
thread the worker has left."""

import threading

import pytest

from batches.models import Batch, Interaction, InteractionStatus, OwnerQuota
from batches.selectors import batch_waiting_for
from bench._model_stub import ModelStub
from tests.batches.factories import finished, make_batch
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def running_by_owner() -> dict:
    rows = Interaction.objects.filter(status=InteractionStatus.RUNNING).values_list(
        "batch__owner__username", flat=True
    )
    counts: dict = {}
    for owner in rows:
        counts[owner] = counts.get(owner, 0) + 1
    return counts


def test_an_owner_at_their_quota_waits_while_another_owners_batch_runs(
    alice, bob, start_worker, settings
):
    stub = ModelStub(delay=0.2)
    settings.OPENAI_BASE_URL = stub.url + "/v1"
    OwnerQuota.objects.create(owner=alice, running_items=1)
    theirs = [
        make_batch(alice, [(f"a{b}-{n}", "") for n in range(6)], processor="openai")
        for b in range(2)
    ]
    others = make_batch(bob, [(f"b{n}", "") for n in range(12)], processor="openai")
    peaks = {"alice": 0, "bob": 0}
    said_quota = threading.Event()
    try:
        start_worker(OPENAI_BASE_URL=stub.url + "/v1", BATCH_CONCURRENCY=4)

        def all_done():
            for owner, count in running_by_owner().items():
                peaks[owner] = max(peaks[owner], count)
            waiting = batch_waiting_for(Batch.objects.get(pk=theirs[1].pk))
            if waiting and waiting["reason"] == "quota":
                said_quota.set()
            return all(finished(b.pk) for b in (*theirs, others))

        wait_until(all_done, timeout=120, poll=0.02, message="every batch's end")
    finally:
        stub.stop()

    assert peaks["alice"] == 1  # her quota, over both her batches
    assert peaks["bob"] >= 2  # the worker's other threads were his
    assert said_quota.is_set()
    for batch in (*theirs, others):
        batch.refresh_from_db()
        assert batch.status == "processed"
