"""The admin: endpoints registered (secret shown once) and rotated, deliveries listed
with their attempts and answers, and redelivered."""

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from webhooks.models import Attempt, Delivery, DeliveryStatus, Endpoint, Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client, staff):
    client.force_login(staff)
    return client


def said(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def delivery(alice):
    from tests.batches.factories import make_batch

    endpoint = Endpoint.objects.create(
        owner=alice, url="https://hooks.example.com/x", events=["batch.failed"], secret="whsec_A"
    )
    event = Event.objects.create(
        type="batch.failed", batch=make_batch(alice, [("q", "")]), payload={"type": "batch.failed"}
    )
    delivery = Delivery.objects.create(
        event=event,
        endpoint=endpoint,
        status=DeliveryStatus.FAILED,
        attempts=2,
        failures=2,
        last_status_code=500,
        retry_until=timezone.now(),
    )
    for number, (code, answer) in enumerate([(502, "bad gateway"), (500, "boom")], start=1):
        Attempt.objects.create(
            delivery=delivery,
            number=number,
            started_at=timezone.now(),
            status_code=code,
            response=answer,
        )
    return delivery


def test_the_admin_lists_deliveries_with_their_attempts_and_answers(admin, delivery):
    listing = admin.get("/admin/webhooks/delivery/")
    assert listing.status_code == 200
    assert "batch.failed" in listing.text and "https://hooks.example.com/x" in listing.text
    page = admin.get(f"/admin/webhooks/delivery/{delivery.pk}/change/")
    assert page.status_code == 200
    assert delivery.event.webhook_id in page.text
    assert "bad gateway" in page.text and "boom" in page.text


def test_the_admin_redelivers_a_delivery(admin, delivery):
    response = admin.post(
        "/admin/webhooks/delivery/",
        {"action": "redeliver", "_selected_action": [delivery.pk]},
        follow=True,
    )
    assert "1 delivery will be sent again shortly." in said(response)
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.failures == 0
    assert delivery.next_attempt_at <= timezone.now() < delivery.retry_until


def test_the_admin_registers_an_endpoint_and_shows_its_secret_once(admin, staff, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    response = admin.post(
        "/admin/webhooks/endpoint/add/",
        {"url": "http://127.0.0.1:9/hook", "events": ["batch.completed", "batch.expired"]},
        follow=True,
    )
    endpoint = Endpoint.objects.get()
    assert (endpoint.owner, endpoint.events) == (staff, ["batch.completed", "batch.expired"])
    assert f"The secret of http://127.0.0.1:9/hook, shown this once: {endpoint.secret}" in said(
        response
    )
    page = admin.get(f"/admin/webhooks/endpoint/{endpoint.pk}/change/")
    assert endpoint.secret not in page.text


def test_the_admin_refuses_a_private_address_with_the_api_s_sentence(admin):
    response = admin.post(
        "/admin/webhooks/endpoint/add/",
        {"url": "http://10.0.0.1/hook", "events": ["batch.completed"]},
    )
    assert response.status_code == 200
    assert "resolves to 10.0.0.1, a private address" in response.text
    assert not Endpoint.objects.exists()


def test_disabling_an_endpoint_in_the_admin_gives_up_its_waiting_deliveries(admin, delivery):
    Delivery.objects.update(status=DeliveryStatus.PENDING)
    endpoint = delivery.endpoint
    response = admin.post(
        f"/admin/webhooks/endpoint/{endpoint.pk}/change/",
        {"url": endpoint.url, "events": endpoint.events},  # is_active unticked
        follow=True,
    )
    assert response.status_code == 200
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.disabled_reason.startswith("Disabled in the admin")
    assert Delivery.objects.get().status == DeliveryStatus.FAILED


def test_the_admin_rotates_a_secret_and_shows_the_new_one(admin, delivery):
    endpoint = delivery.endpoint
    response = admin.post(
        "/admin/webhooks/endpoint/",
        {"action": "rotate_secret", "_selected_action": [endpoint.pk]},
        follow=True,
    )
    endpoint.refresh_from_db()
    assert endpoint.previous_secret == "whsec_A"
    assert f"shown this once: {endpoint.secret}" in said(response)[0]
