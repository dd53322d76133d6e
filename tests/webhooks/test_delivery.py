"""Sending deliveries, as the worker's thread does: signed as Standard Webhooks,
retried after a growing wait, given up, or stopped by a 410; the address checked
again when sent. The receivers are real HTTP servers on 127.0.0.1."""

import threading
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.batches.factories import make_batch
from tests.support.receivers import Receiver, always, fail_first
from tests.support.waiting import wait_until
from webhooks.delivery import Dispatcher, Sent, _next_step, deliveries_claim
from webhooks.models import Attempt, Delivery, DeliveryStatus, Endpoint, Event
from webhooks.services import delivery_redeliver, endpoint_create, endpoint_rotate_secret
from webhooks.signing import new_secret

pytestmark = pytest.mark.django_db

EVENTS = ["batch.completed", "batch.failed", "batch.cancelled"]


@pytest.fixture
def dispatcher():
    dispatcher = Dispatcher(threads=4)
    yield dispatcher
    dispatcher.close()


def send_due(dispatcher, until=None, timeout=15):
    """Run the worker's loop until nothing is being sent or due (or ``until()``)."""
    stop, deadline = threading.Event(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        claimed = dispatcher.step(stop)
        if until is not None and until():
            return
        if not claimed and not dispatcher.running:
            if until is None:
                return
            time.sleep(0.01)  # a retry is due later
    raise AssertionError("deliveries were still being sent")


def ended_batch(owner, status="cancelled"):
    """A batch that just ended (cancelled: no worker needed), with its event recorded."""
    from batches.services import batch_cancel

    batch = make_batch(owner, [("q1", "")])
    batch_cancel(batch=batch)
    return batch


@pytest.fixture
def registered(alice, receiver, allow_private):
    endpoint = endpoint_create(owner=alice, url=receiver.url, events=EVENTS)
    receiver.secrets = [endpoint.secret]
    return endpoint


def test_a_delivery_is_signed_as_standard_webhooks_and_the_receiver_verifies_it(
    alice, registered, receiver, dispatcher
):
    batch = ended_batch(alice)
    send_due(dispatcher)
    event = Event.objects.get()
    assert list(receiver.accepted) == [event.webhook_id]
    assert receiver.accepted[event.webhook_id]["data"]["id"] == str(batch.pk)
    headers = receiver.requests[0]["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-signature"].startswith("v1,")
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 200)
    assert delivery.delivered_at is not None and delivery.claimed_until is None
    attempt = Attempt.objects.get()
    assert (attempt.number, attempt.status_code, attempt.response) == (1, 200, '{"ok": true}')


def test_a_receiver_with_another_secret_refuses_the_signature(
    alice, registered, receiver, dispatcher
):
    receiver.secrets = [new_secret()]
    ended_batch(alice)
    send_due(dispatcher, until=lambda: receiver.refused_signatures)
    assert not receiver.accepted


def test_a_failed_attempt_is_tried_again_later_with_the_same_webhook_id(
    alice, registered, receiver, dispatcher, settings
):
    settings.WEBHOOKS_BACKOFF_MS = 200
    receiver.decide = fail_first(2, status=503)
    ended_batch(alice)
    send_due(dispatcher, until=lambda: Delivery.objects.get().attempts == 1)
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.last_status_code == 503
    assert delivery.last_error == "Answered 503."
    # 200 ms, less at most a quarter of it (jitter), after the attempt.
    waited = delivery.next_attempt_at - Attempt.objects.get().started_at
    assert timedelta(milliseconds=150) <= waited <= timedelta(milliseconds=400)
    send_due(dispatcher, until=lambda: receiver.accepted)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 3)
    ids = {request["headers"]["webhook-id"] for request in receiver.requests}
    assert len(receiver.requests) == 3 and len(ids) == 1
    assert list(Attempt.objects.values_list("status_code", flat=True)) == [503, 503, 200]


def test_waits_double_with_jitter_up_to_the_cap(settings):
    settings.WEBHOOKS_BACKOFF_MS = 1000
    settings.WEBHOOKS_BACKOFF_MAX = 5
    now = timezone.now()
    failed = Sent(now, 10, status_code=500)
    delivery = Delivery(retry_until=now + timedelta(days=1))
    waits = []
    for failures in range(6):
        delivery.failures = failures
        step = _next_step(delivery, failed, now)
        waits.append((step["next_attempt_at"] - now).total_seconds())
        assert step["failures"] == failures + 1
    for wait, full in zip(waits, [1, 2, 4, 5, 5, 5], strict=True):
        assert 0.75 * full <= wait <= full


def test_a_delivery_is_given_up_once_its_next_attempt_would_fall_after_its_retry_period(
    alice, registered, receiver, dispatcher, settings
):
    settings.WEBHOOKS_RETRY_FOR = 0
    receiver.decide = always(500)
    ended_batch(alice)
    send_due(dispatcher)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 1, None)
    assert len(receiver.requests) == 1


def test_a_410_disables_the_endpoint_and_gives_up_its_deliveries(
    alice, registered, receiver, dispatcher
):
    receiver.decide = always(410)
    ended_batch(alice)
    send_due(dispatcher)
    registered.refresh_from_db()
    assert registered.is_active is False
    assert registered.disabled_reason.startswith("Answered 410 Gone on ")
    assert Delivery.objects.get().status == DeliveryStatus.FAILED
    ended_batch(alice)  # nothing more is recorded for a disabled endpoint
    assert Delivery.objects.count() == 1


def test_an_endpoint_that_now_resolves_to_a_private_address_is_not_sent_anything(
    alice, registered, receiver, dispatcher, settings
):
    settings.WEBHOOKS_ALLOW_PRIVATE = False  # as if DNS had changed since registration
    ended_batch(alice)
    send_due(dispatcher, until=lambda: Delivery.objects.get().attempts == 1)
    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.last_status_code is None
    assert "127.0.0.1, a loopback address" in delivery.last_error
    assert receiver.requests == []


def test_an_endpoint_that_does_not_answer_within_the_timeout_fails_the_attempt(
    alice, registered, receiver, dispatcher, settings
):
    settings.WEBHOOKS_TIMEOUT = 1
    receiver.delay = 3
    ended_batch(alice)
    send_due(dispatcher, until=lambda: Delivery.objects.get().attempts == 1)
    delivery = Delivery.objects.get()
    assert delivery.last_error == "No answer within 1 s."
    assert 1000 <= Attempt.objects.get().duration_ms < 2500


def test_an_endpoint_that_refuses_connections_fails_the_attempt(alice, dispatcher, allow_private):
    from tests.support.stubs import closed_port_url

    endpoint_create(owner=alice, url=closed_port_url(), events=EVENTS)
    ended_batch(alice)
    send_due(dispatcher, until=lambda: Delivery.objects.get().attempts == 1)
    assert Delivery.objects.get().last_error.startswith("ConnectError")


def test_while_a_rotation_overlaps_either_secret_verifies_each_delivery(
    alice, registered, receiver, dispatcher
):
    old = registered.secret
    new = endpoint_rotate_secret(endpoint=registered).secret
    ended_batch(alice)
    send_due(dispatcher)
    request = receiver.requests[0]
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Receiver(secrets=[secret]).verified(request["headers"], request["body"])


def test_after_the_overlap_only_the_new_secret_signs(
    alice, registered, receiver, dispatcher, settings
):
    settings.WEBHOOKS_ROTATION_OVERLAP = 0
    new = endpoint_rotate_secret(endpoint=registered).secret
    receiver.secrets = [new]
    ended_batch(alice)
    send_due(dispatcher)
    assert len(receiver.requests[0]["headers"]["webhook-signature"].split(" ")) == 1
    assert len(receiver.accepted) == 1


def test_redelivering_sends_the_event_again_with_the_same_webhook_id(
    alice, registered, receiver, dispatcher
):
    ended_batch(alice)
    send_due(dispatcher)
    delivery = Delivery.objects.get()
    delivery_redeliver(delivery=delivery)
    send_due(dispatcher)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)
    assert len(receiver.requests) == 2
    assert receiver.duplicates[Event.objects.get().webhook_id] == 1  # deduplicated


def test_a_delivery_being_sent_is_not_claimed_again_nor_redelivered(alice, registered):
    from batchsvc.api.errors import Conflict

    ended_batch(alice)
    claimed = deliveries_claim(limit=10)
    assert len(claimed) == 1
    assert deliveries_claim(limit=10) == []
    with pytest.raises(Conflict, match="being sent now"):
        delivery_redeliver(delivery=claimed[0])
    Delivery.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))  # it died
    assert [d.pk for d in deliveries_claim(limit=10)] == [claimed[0].pk]


def test_deleting_an_endpoint_while_its_delivery_is_sent_records_nothing(
    alice, registered, receiver, dispatcher
):
    ended_batch(alice)
    receiver.delay = 0.5
    dispatcher.step(threading.Event())
    Endpoint.objects.all().delete()
    wait_until(lambda: receiver.requests, timeout=5)
    send_due(dispatcher)
    assert not Attempt.objects.exists()


def test_the_deliveries_list_shows_each_attempt(
    alice, registered, receiver, dispatcher, api, fast_backoff
):
    receiver.decide = fail_first(1, status=500)
    ended_batch(alice)
    send_due(dispatcher, until=lambda: receiver.accepted)
    body = api.get(f"/api/v1/webhooks/{registered.pk}/deliveries").json()
    (delivery,) = body["results"]
    assert delivery["webhook_id"] == Event.objects.get().webhook_id
    assert delivery["event_type"] == "batch.cancelled"
    assert delivery["status"] == "succeeded" and delivery["attempts"] == 2
    assert [a["status_code"] for a in delivery["attempt_history"]] == [500, 200]
