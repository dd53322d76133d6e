"""Writes for webhooks: endpoints registered, rotated and deleted, events recorded
when a batch ends, deliveries redelivered. The API and the admin call these; the
worker sends (webhooks.delivery)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from batches.models import Batch, BatchStatus
from batchsvc.api.errors import ApiError, Conflict
from webhooks.addresses import RefusedUrl, target_for
from webhooks.models import Delivery, DeliveryStatus, Endpoint, Event, EventType
from webhooks.signing import new_secret

EVENT_OF_STATUS = {
    BatchStatus.PROCESSED: EventType.COMPLETED,
    BatchStatus.COMPLETED_WITH_ERRORS: EventType.COMPLETED,
    BatchStatus.FAILED: EventType.FAILED,
    BatchStatus.CANCELLED: EventType.CANCELLED,
}


def endpoint_create(*, owner, url, events) -> Endpoint:
    """A new endpoint with a new secret (the caller shows it once), or a 400 naming
    what is wrong with ``url`` or ``events``."""
    return Endpoint.objects.create(
        owner=owner, url=url_checked(url), events=events_checked(events), secret=new_secret()
    )


def url_checked(url) -> str:
    """``url`` if a webhook may be sent there now (see webhooks.addresses), else a 400."""
    try:
        target_for(url)
    except RefusedUrl as exc:
        raise ApiError(str(exc), details={"url": [str(exc)]}) from None
    return url


def events_checked(events) -> list[str]:
    valid = EventType.values
    if not isinstance(events, list) or not events:
        message = f"events must be a list of one or more of: {', '.join(valid)}."
        raise ApiError(message, details={"events": [message]})
    unknown = [event for event in events if event not in valid]
    if unknown:
        message = f"events names unknown event types {unknown!r}; choose from: {', '.join(valid)}."
        raise ApiError(message, details={"events": [message]})
    return list(dict.fromkeys(events))


def endpoint_rotate_secret(*, endpoint: Endpoint) -> Endpoint:
    """A new secret; the one it replaces still signs deliveries, beside it, for
    WEBHOOKS_ROTATION_OVERLAP seconds. (Rotating again within that time drops the
    oldest of the three at once.)"""
    now = timezone.now()
    with transaction.atomic():
        locked = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
        locked.previous_secret = locked.secret
        locked.previous_secret_until = now + timedelta(seconds=settings.WEBHOOKS_ROTATION_OVERLAP)
        locked.secret = new_secret()
        # Only these: a concurrent disable (a 410) must not be undone.
        locked.save(update_fields=["secret", "previous_secret", "previous_secret_until"])
    return locked


def endpoint_delete(*, endpoint: Endpoint) -> None:
    """The endpoint and its deliveries (a delivery being sent ends its attempt)."""
    endpoint.delete()


def endpoint_disable(*, endpoint_id, reason: str) -> None:
    """Send the endpoint nothing more: its waiting deliveries are given up."""
    with transaction.atomic():
        Endpoint.objects.filter(pk=endpoint_id).update(
            is_active=False, disabled_reason=reason[:255], updated_at=timezone.now()
        )
        Delivery.objects.filter(endpoint_id=endpoint_id, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.FAILED, next_attempt_at=None, last_error=reason[:500]
        )


def events_record(*, batch: Batch, ended_at: datetime) -> Event | None:
    """Call inside the transaction that may have ended ``batch`` at ``ended_at``: if it
    did, the event, and a delivery to each endpoint of the batch's owner listening to
    it, written with the final status so that neither exists without the other. None
    when the batch did not end then, or no one listens."""
    batch = Batch.objects.get(pk=batch.pk)  # its final status and counts, as written
    if batch.finished_at != ended_at or batch.status not in EVENT_OF_STATUS:
        return None
    event_type = event_type_of(batch)
    endpoints = Endpoint.objects.listening(owner_id=batch.owner_id, event_type=event_type)
    if not endpoints:
        return None
    event = Event(type=event_type, batch=batch)
    event.payload = event_payload(event, batch)
    event.save(force_insert=True)
    now = timezone.now()
    retry_until = now + timedelta(seconds=settings.WEBHOOKS_RETRY_FOR)
    Delivery.objects.bulk_create(
        Delivery(event=event, endpoint=endpoint, next_attempt_at=now, retry_until=retry_until)
        for endpoint in endpoints
    )
    return event


def event_type_of(batch: Batch) -> str:
    """batch.expired for a batch with a deadline (its ``expires_at`` option, a Unix time,
    as the OpenAI-compatible API sets) that ended after it without every item done."""
    deadline = (batch.options or {}).get("expires_at")
    if (
        batch.status in (BatchStatus.FAILED, BatchStatus.COMPLETED_WITH_ERRORS)
        and isinstance(deadline, int | float)
        and batch.finished_at is not None
        and batch.finished_at.timestamp() >= deadline
    ):
        return EventType.EXPIRED
    return EVENT_OF_STATUS[batch.status]


def event_payload(event: Event, batch: Batch) -> dict:
    """The thin event: what happened to which batch, its counts, and where to read
    the rest (paths on this server's API)."""
    detail = reverse("batch-detail", kwargs={"pk": batch.pk})
    return {
        "type": event.type,
        "timestamp": (batch.finished_at or timezone.now()).isoformat(),
        "data": {
            "id": str(batch.pk),
            "object": "batch",
            "status": batch.status,
            "total_items": batch.total_items,
            "processed_items": batch.processed_items,
            "failed_items": batch.failed_items,
            "cancelled_items": batch.cancelled_items,
            "links": {
                "batch": detail,
                "results": reverse("batch-results", kwargs={"pk": batch.pk}),
                "interactions": reverse("batch-interactions", kwargs={"pk": batch.pk}),
            },
        },
    }


def delivery_redeliver(*, delivery: Delivery) -> None:
    """Send the delivery again as soon as a worker can, with a new retry period
    (same event, same webhook-id: a receiver that deduplicates sees it once). 409
    while an attempt of it is under way, or when its endpoint is disabled."""
    now = timezone.now()
    with transaction.atomic():
        if not Endpoint.objects.filter(pk=delivery.endpoint_id, is_active=True).exists():
            raise Conflict("The endpoint is disabled; enable it before redelivering.")
        changed = (
            Delivery.objects.filter(pk=delivery.pk)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .update(
                status=DeliveryStatus.PENDING,
                failures=0,
                next_attempt_at=now,
                retry_until=now + timedelta(seconds=settings.WEBHOOKS_RETRY_FOR),
                claimed_until=None,
            )
        )
    if not changed:
        raise Conflict("The delivery is being sent now; redeliver it once this attempt ends.")
