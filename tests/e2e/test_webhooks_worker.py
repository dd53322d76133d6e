"""Webhooks sent by real ``db_worker`` processes to a receiver on 127.0.0.1 that checks
each signature with the standardwebhooks package and fails on purpose."""

import pytest

from batches.services import batch_cancel
from tests.batches.factories import csv_upload, finished, make_batch, post_batch
from tests.support.receivers import Receiver, fail_first
from tests.support.waiting import wait_until
from webhooks.models import Delivery, DeliveryStatus, Event
from webhooks.services import endpoint_create

pytestmark = pytest.mark.django_db(transaction=True)

WORKER_ENV = {"WEBHOOKS_ALLOW_PRIVATE": "true", "WEBHOOKS_BACKOFF_MS": "100"}


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def test_a_worker_sends_the_end_of_a_batch_signed_and_again_after_a_failure(
    api, receiver, start_worker, settings
):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    created = api.post(
        "/api/v1/webhooks",
        {"url": receiver.url, "events": ["batch.completed"]},
        format="json",
    ).json()
    receiver.secrets = [created["secret"]]
    receiver.decide = fail_first(1, status=503)
    batch_id = post_batch(api, csv_upload([("q1", "a"), ("q2", "b")])).json()["batch_id"]
    start_worker(**WORKER_ENV)

    wait_until(lambda: receiver.accepted, message="the event accepted")
    ((webhook_id, event),) = receiver.accepted.items()
    assert event["type"] == "batch.completed"
    assert event["data"]["id"] == batch_id and event["data"]["status"] == "processed"
    assert event["data"]["processed_items"] == 2
    assert receiver.attempts[webhook_id] == 2 and receiver.refused_signatures == 0
    assert finished(batch_id) is not None
    delivery = wait_until(
        lambda: Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).first(),
        message="the delivery recorded",
    )
    assert delivery.attempts == 2 and delivery.event.webhook_id == webhook_id
    assert [a.status_code for a in delivery.attempt_set.all()] == [503, 200]


def test_two_workers_send_each_delivery_once(alice, receiver, start_worker, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    endpoint = endpoint_create(owner=alice, url=receiver.url, events=["batch.cancelled"])
    receiver.secrets = [endpoint.secret]
    for n in range(40):
        batch_cancel(batch=make_batch(alice, [(f"q{n}", "")]))
    assert Event.objects.count() == 40
    start_worker(**WORKER_ENV, WEBHOOKS_THREADS=8)
    start_worker(**WORKER_ENV, WEBHOOKS_THREADS=8)

    wait_until(lambda: len(receiver.accepted) == 40, message="every event accepted")
    wait_until(
        lambda: Delivery.objects.filter(status=DeliveryStatus.SUCCEEDED).count() == 40,
        message="every delivery recorded",
    )
    assert sum(receiver.attempts.values()) == 40  # none sent twice
    assert set(receiver.attempts.values()) == {1}
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}
