"""Events are recorded in the transaction that ends a batch: one event per end, a
delivery to each endpoint of the owner that listens to its type."""

import pytest
from django.utils import timezone

from batches.engine.finishing import batch_fail, batch_finish
from batches.models import Batch, BatchStatus, InteractionStatus
from tests.batches.factories import make_batch
from webhooks.models import Delivery, DeliveryStatus, Endpoint, Event
from webhooks.services import event_type_of

pytestmark = pytest.mark.django_db

ALL = ["batch.completed", "batch.failed", "batch.cancelled", "batch.expired"]


def endpoint(owner, events=ALL, url="http://127.0.0.1:9/hook"):
    return Endpoint.objects.create(owner=owner, url=url, events=events, secret="whsec_AAAA")


def run_all(batch, status=InteractionStatus.SUCCEEDED, error=""):
    batch.interactions.update(status=status, error=error, finished_at=timezone.now())
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.PROCESSING)


def test_a_batch_that_ends_gets_its_event_and_a_delivery_to_each_listening_endpoint(alice):
    batch = make_batch(alice, [("q1", ""), ("q2", "")])
    first, second = endpoint(alice), endpoint(alice, url="http://127.0.0.1:10/hook")
    run_all(batch)
    assert batch_finish(batch=batch)
    event = Event.objects.get()
    batch.refresh_from_db()
    assert event.type == "batch.completed"
    assert event.payload == {
        "type": "batch.completed",
        "timestamp": batch.finished_at.isoformat(),
        "data": {
            "id": str(batch.pk),
            "object": "batch",
            "status": "processed",
            "total_items": 2,
            "processed_items": 2,
            "failed_items": 0,
            "cancelled_items": 0,
            "links": {
                "batch": f"/api/v1/batches/{batch.pk}",
                "results": f"/api/v1/batches/{batch.pk}/results",
                "interactions": f"/api/v1/batches/{batch.pk}/interactions",
            },
        },
    }
    deliveries = Delivery.objects.order_by("endpoint__created_at")
    assert [d.endpoint for d in deliveries] == [first, second]
    assert {d.status for d in deliveries} == {DeliveryStatus.PENDING}
    assert all(d.next_attempt_at <= timezone.now() for d in deliveries)


def test_finishing_a_batch_that_already_ended_records_no_second_event(alice):
    batch = make_batch(alice, [("q1", "")])
    endpoint(alice)
    run_all(batch)
    batch_finish(batch=batch)
    batch_finish(batch=batch)
    assert Event.objects.count() == 1


def test_no_event_is_recorded_when_no_endpoint_listens(alice, bob):
    batch = make_batch(alice, [("q1", "")])
    endpoint(bob)  # another owner's
    endpoint(alice, events=["batch.failed"])
    Endpoint.objects.create(owner=alice, url="http://x/", events=ALL, secret="s", is_active=False)
    run_all(batch)
    batch_finish(batch=batch)
    assert not Event.objects.exists() and not Delivery.objects.exists()


def test_a_batch_whose_items_all_failed_sends_batch_failed(alice):
    batch = make_batch(alice, [("q1", "")])
    listening = endpoint(alice, events=["batch.failed"])
    batch_fail(batch=batch, error="not configured")
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.PROCESSING)
    batch_finish(batch=batch)
    assert Delivery.objects.get().endpoint == listening
    assert Event.objects.get().payload["data"]["status"] == "failed"


def test_a_cancelled_batch_sends_batch_cancelled(alice):
    from batches.services import batch_cancel

    batch = make_batch(alice, [("q1", ""), ("q2", "")])
    endpoint(alice, events=["batch.cancelled"])
    batch_cancel(batch=batch)
    event = Event.objects.get()
    assert event.type == "batch.cancelled"
    assert event.payload["data"]["cancelled_items"] == 2


def test_a_batch_that_ended_past_its_deadline_with_items_not_done_is_batch_expired(alice):
    batch = make_batch(alice, [("q1", "")], options={})
    batch.status, batch.finished_at = BatchStatus.COMPLETED_WITH_ERRORS, timezone.now()
    batch.options = {"expires_at": batch.finished_at.timestamp() - 1}
    assert event_type_of(batch) == "batch.expired"
    batch.options = {"expires_at": batch.finished_at.timestamp() + 60}
    assert event_type_of(batch) == "batch.completed"
    batch.status = BatchStatus.PROCESSED
    batch.options = {"expires_at": batch.finished_at.timestamp() - 1}
    assert event_type_of(batch) == "batch.completed"
