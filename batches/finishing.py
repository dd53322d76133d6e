"""Ending a batch: its final status and exact counters, or its failure as a whole."""

from django.db import transaction
from django.utils import timezone

from batches.models import ACTIVE_BATCH, Batch, BatchStatus, InteractionStatus


def batch_finish(*, batch: Batch) -> bool:
    """Once no row is unfinished: exact counters and the final status."""
    with transaction.atomic():
        counts = batch.interactions.counts()
        if counts.get(InteractionStatus.PENDING) or counts.get(InteractionStatus.RUNNING):
            return False
        succeeded = counts.get(InteractionStatus.SUCCEEDED, 0)
        failed = counts.get(InteractionStatus.FAILED, 0)
        now = timezone.now()
        fields = dict(
            processed_items=succeeded,
            failed_items=failed,
            cancelled_items=counts.get(InteractionStatus.CANCELLED, 0),
            updated_at=now,
        )
        Batch.objects.filter(pk=batch.pk, status__in=ACTIVE_BATCH).update(
            status=final_status(succeeded=succeeded, failed=failed), finished_at=now, **fields
        )
        Batch.objects.filter(pk=batch.pk, status=BatchStatus.CANCELLED).update(**fields)
    return True


def final_status(*, succeeded: int, failed: int) -> str:
    if not failed:
        return BatchStatus.PROCESSED
    return BatchStatus.FAILED if not succeeded else BatchStatus.COMPLETED_WITH_ERRORS


def batch_fail(*, batch: Batch, error: str) -> None:
    """The processor cannot be used (misconfigured): every waiting row fails with why."""
    now = timezone.now()
    with transaction.atomic():
        batch.interactions.filter(status=InteractionStatus.PENDING).update(
            status=InteractionStatus.FAILED, error=error, finished_at=now
        )
        Batch.objects.filter(pk=batch.pk).update(error=error, updated_at=now)
