"""Webhook endpoints, the events of batches that ended, and their deliveries.

An endpoint is a URL a user registered for some event types. When a batch ends, the
transaction that gives it its final status also writes the event and one delivery per
endpoint listening (see webhooks.services.events_record); the worker process sends
deliveries (webhooks.delivery), never a request. Each try of a delivery is an Attempt:
what was answered, or why nothing was.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from batches.models import Batch
from batchsvc.api.ownership import OwnedQuerySet

URL_MAX = 2000
RESPONSE_KEPT = 2000  # characters of an answer's body kept on its attempt


class EventType(models.TextChoices):
    COMPLETED = "batch.completed"
    """Every item ran; some may have failed."""
    FAILED = "batch.failed"
    """No item succeeded, or the processor could not be used at all."""
    CANCELLED = "batch.cancelled"
    """Someone cancelled the batch."""
    EXPIRED = "batch.expired"
    """The batch's deadline passed before every item was sent."""


class EndpointQuerySet(OwnedQuerySet):
    def listening(self, *, owner_id, event_type: str) -> list["Endpoint"]:
        """The owner's enabled endpoints that asked for ``event_type`` (an owner has few
        endpoints: their event lists are read here rather than queried as JSON)."""
        endpoints = self.filter(owner_id=owner_id, is_active=True).order_by("created_at")
        return [endpoint for endpoint in endpoints if event_type in endpoint.events]


class Endpoint(models.Model):
    """A URL that receives the events of its owner's batches, signed with its secret."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="webhook_endpoints",
        db_index=False,  # the (owner, created_at) index starts with it
    )
    url = models.CharField("URL", max_length=URL_MAX)
    events = models.JSONField(default=list, help_text="the event types sent to it")
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_until = models.DateTimeField(
        null=True, blank=True, help_text="until when deliveries are signed with the old secret too"
    )
    is_active = models.BooleanField(
        "enabled", default=True, help_text="a disabled endpoint is sent nothing"
    )
    disabled_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = EndpointQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "webhook endpoint"
        indexes = [models.Index(fields=["owner", "-created_at"], name="endpoint_owner_created")]

    def __str__(self):
        return self.url

    def secrets(self, *, now) -> list[str]:
        """The secrets a delivery is signed with now: the current one, and the one it
        replaced while the rotation's overlap lasts."""
        if self.previous_secret and self.previous_secret_until and now < self.previous_secret_until:
            return [self.secret, self.previous_secret]
        return [self.secret]


class Event(models.Model):
    """A batch's end, as sent: ``id`` is the ``webhook-id`` every delivery of it carries."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=32, choices=EventType.choices)
    # CASCADE: the event goes with its batch when retention purges the batch.
    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="webhook_events")
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.type} {self.batch_id}"

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.id.hex}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    """Waiting for its next attempt."""
    SUCCEEDED = "succeeded"
    """The endpoint answered 2xx."""
    FAILED = "failed"
    """Given up: retried for as long as allowed, or the endpoint was disabled."""


class DeliveryQuerySet(OwnedQuerySet):
    owner_field = "endpoint__owner"

    def due(self, *, now):
        """Pending deliveries whose time has come and that no worker is sending."""
        return self.filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=now,
        ).order_by("next_attempt_at")


class Delivery(models.Model):
    """One event on its way to one endpoint, tried until it succeeds or is given up."""

    # No indexes of their own: the unique (event, endpoint) and the (endpoint, created_at)
    # indexes start with them.
    event = models.ForeignKey(
        Event, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0, help_text="attempts made, all told")
    failures = models.PositiveIntegerField(
        default=0, help_text="failed attempts since it was (re)delivered: sets the next wait"
    )
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    retry_until = models.DateTimeField(help_text="no attempt is made after this time")
    # A worker sending it holds it until then; one that died lets it go at that time.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="delivery_event_endpoint"),
            models.CheckConstraint(
                condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid"
            ),
        ]
        indexes = [
            # The worker's query: small, a delivery is in it only while it is pending.
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due",
                condition=Q(status=DeliveryStatus.PENDING),
            ),
            models.Index(fields=["endpoint", "-created_at"], name="delivery_endpoint_created"),
        ]

    def __str__(self):
        return f"{self.event} to {self.endpoint}"


class Attempt(models.Model):
    """One try of a delivery: the endpoint's answer, or why there was none."""

    # No index of its own: the unique (delivery, number) index starts with it.
    delivery = models.ForeignKey(
        Delivery, on_delete=models.CASCADE, related_name="attempt_set", db_index=False
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response = models.TextField(blank=True, help_text=f"the first {RESPONSE_KEPT} characters")
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["delivery", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="attempt_delivery_number")
        ]

    def __str__(self):
        return f"attempt {self.number} of {self.delivery_id}"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300
