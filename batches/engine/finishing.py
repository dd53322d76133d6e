"""Ending a batch: its final status and exact counters, or its failure as a whole."""

from django.db import transaction
from django.db.models import Count, F, Value
from django.db.models.functions import Coalesce, NullIf
from django.utils import timezone

from batches.failures import group_key
from batches.models import ACTIVE_BATCH, Batch, BatchStatus, InteractionStatus
from batches.processors.base import processor_class
from webhooks.services import events_record


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
        status = final_status(succeeded=succeeded, failed=failed)
        if status == BatchStatus.FAILED:
            # A batch that failed as a whole says why, not only its items.
            fields["error"] = Coalesce(NullIf(F("error"), Value("")), Value(why_all_failed(batch)))
        Batch.objects.filter(pk=batch.pk, status__in=ACTIVE_BATCH).update(
            status=status, finished_at=now, **fields
        )
        fields.pop("error", None)
        # A cancel is over once none of its rows runs; a cancelled batch is recounted
        # (a dead worker's rows are failed by recovery after it ended).
        Batch.objects.filter(pk=batch.pk, status=BatchStatus.CANCELLING).update(
            status=BatchStatus.CANCELLED, finished_at=now, **fields
        )
        Batch.objects.filter(pk=batch.pk, status=BatchStatus.CANCELLED).update(**fields)
        events_record(batch=batch, ended_at=now)  # webhooks, when this call ended the batch
    return True


def why_all_failed(batch: Batch) -> str:
    """One sentence for a batch none of whose items succeeded: its most common error,
    and when every item failed alike (a provider it cannot reach, a key it refuses),
    the setting to look at."""
    errors = (
        batch.interactions.filter(status=InteractionStatus.FAILED)
        .order_by()
        .values_list("error")
        .annotate(n=Count("pk"))
        .order_by("-n")
    )
    errors = list(errors[:2])
    if not errors or not errors[0][0]:
        return "Every item failed."
    error, count = errors[0]
    if len(errors) > 1:
        return f"Every item failed; {count} with: {error}"
    # Read again: the worker finishes batches it knows by their id only.
    name = Batch.objects.filter(pk=batch.pk).values_list("processor", flat=True).first()
    processor = processor_class(name or "")
    setting = processor.address_setting if processor else ""
    where = f" (is {setting} right, and its server up?)" if setting else ""
    return f"All {count} items failed with the same error{where}: {error}"


def final_status(*, succeeded: int, failed: int) -> str:
    if not failed:
        return BatchStatus.PROCESSED
    return BatchStatus.FAILED if not succeeded else BatchStatus.COMPLETED_WITH_ERRORS


def batch_fail(*, batch: Batch, error: str) -> None:
    """The processor cannot be used (misconfigured): every waiting row fails with why."""
    now = timezone.now()
    with transaction.atomic():
        batch.interactions.filter(status=InteractionStatus.PENDING).update(
            status=InteractionStatus.FAILED,
            error=error,
            error_group=group_key(error),
            finished_at=now,
        )
        Batch.objects.filter(pk=batch.pk).update(error=error, updated_at=now)
