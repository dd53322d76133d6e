"""What belongs to a batch's owner beside the batch: the retries they asked for, and
the quotas an operator gave them."""

from dataclasses import dataclass

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from batches.models.batch import Batch


class BatchAttempt(models.Model):
    """A retry of a batch's failed items (all of them, or one failure group): when, how
    many were queued again, and by whom. The batch's first run is not one."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="attempts")
    at = models.DateTimeField()
    requeued = models.PositiveIntegerField(help_text="failed items queued again")
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    group = models.CharField(
        max_length=16, blank=True, help_text="the failure group retried (empty: every failed item)"
    )

    class Meta:
        ordering = ["batch", "at"]

    def __str__(self):
        return f"{self.batch} retry of {self.requeued} at {self.at:%Y-%m-%d %H:%M:%S}"


class OwnerQuota(models.Model):
    """One owner's limits, over the server's defaults: how many of their items run at
    once, how many of their batches may wait, and their share of each provider's
    requests and tokens per minute. An empty limit takes the default."""

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="batch_quota"
    )
    running_items = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="how many of this owner's items may run at once, over all their batches",
    )
    queued_batches = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="how many of this owner's batches may be queued or running; another "
        "upload is refused until one ends",
    )
    provider_share = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.001), MaxValueValidator(1)],
        help_text="the share of each model provider's requests and tokens per minute "
        "this owner's batches may use, above 0 and at most 1",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(running_items__isnull=True) | Q(running_items__gt=0),
                name="quota_running_items_positive",
            ),
            models.CheckConstraint(
                condition=Q(queued_batches__isnull=True) | Q(queued_batches__gt=0),
                name="quota_queued_batches_positive",
            ),
            models.CheckConstraint(
                condition=Q(provider_share__isnull=True)
                | (Q(provider_share__gt=0) & Q(provider_share__lte=1)),
                name="quota_provider_share_in_range",
            ),
        ]

    def __str__(self):
        return f"quota of {self.owner}"


@dataclass(frozen=True)
class Quota:
    """One owner's limits in force: None is no limit."""

    running_items: int | None
    queued_batches: int | None
    provider_share: float

    @classmethod
    def of(cls, owner_id) -> "Quota":
        row = OwnerQuota.objects.filter(owner_id=owner_id).first() if owner_id else None
        share = row.provider_share if row and row.provider_share else None
        return cls(
            running_items=(row and row.running_items) or settings.QUOTA_RUNNING_ITEMS,
            queued_batches=(row and row.queued_batches) or settings.QUOTA_QUEUED_BATCHES,
            provider_share=share or settings.QUOTA_PROVIDER_SHARE,
        )
