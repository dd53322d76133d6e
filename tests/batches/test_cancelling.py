"""A cancel while items run: the batch is cancelling until they end, then cancelled
with its final counts; a cancel with nothing running is cancelled at once."""

import pytest
from django.utils import timezone

from batches.engine.finishing import batch_finish
from batches.models import Batch, BatchStatus, InteractionStatus
from tests.batches.factories import make_batch

pytestmark = pytest.mark.django_db


def running_batch(owner, rows: int = 5, running: int = 2) -> Batch:
    batch = make_batch(owner, [(f"q{n}", "") for n in range(rows)])
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.PROCESSING)
    first = batch.interactions.order_by("row_number")[:running]
    batch.interactions.filter(pk__in=[item.pk for item in first]).update(
        status=InteractionStatus.RUNNING, claimed_by="w/0", heartbeat_at=timezone.now()
    )
    return batch


def test_a_cancel_answers_cancelling_while_items_run_and_cancels_the_rest(api, alice):
    batch = running_batch(alice)

    body = api.post(f"/api/v1/batches/{batch.pk}/cancel").json()

    assert (body["status"], body["cancelled_items"], body["finished_at"]) == ("cancelling", 3, None)
    assert batch.interactions.filter(status=InteractionStatus.RUNNING).count() == 2


def test_a_cancelling_batch_is_cancelled_with_its_final_counts_once_its_items_end(api, alice):
    batch = running_batch(alice)
    api.post(f"/api/v1/batches/{batch.pk}/cancel")
    batch.interactions.filter(status=InteractionStatus.RUNNING).update(
        status=InteractionStatus.SUCCEEDED, finished_at=timezone.now()
    )

    assert batch_finish(batch=batch)

    body = api.get(f"/api/v1/batches/{batch.pk}/").json()
    assert (body["status"], body["processed_items"], body["cancelled_items"]) == (
        "cancelled",
        2,
        3,
    )
    assert body["finished_at"] is not None


def test_a_cancel_with_nothing_running_is_cancelled_at_once(api, alice):
    batch = make_batch(alice, [("q", ""), ("r", "")])

    body = api.post(f"/api/v1/batches/{batch.pk}/cancel").json()

    assert (body["status"], body["cancelled_items"]) == ("cancelled", 2)
    assert body["finished_at"] is not None


def test_a_cancelling_batch_cannot_be_cancelled_again(api, alice):
    batch = running_batch(alice)
    api.post(f"/api/v1/batches/{batch.pk}/cancel")

    response = api.post(f"/api/v1/batches/{batch.pk}/cancel")

    assert response.status_code == 409
    assert response.json()["error"].startswith("The batch is cancelling;")
