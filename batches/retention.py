"""Retention of batches: a batch that ended more than RETAIN_BATCHES_DAYS ago goes,
with its items (and so its results) and whatever hangs off it, deleted by the purge
(batchsvc.ops.retention): its items first, in chunks, then the batch."""

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.db import transaction

from batches.models import ACTIVE_BATCH, Batch, Interaction
from batchsvc.ops.retention import ChunkSize, Purger, days_kept, delete_in_chunks, register

SETTING = "RETAIN_BATCHES_DAYS"


def batch_expires_at(batch: Batch) -> datetime | None:
    """When the purge may delete the batch and its results; None while it runs or
    when batches are kept forever."""
    days = days_kept(SETTING)
    if days is None or batch.status in ACTIVE_BATCH or batch.finished_at is None:
        return None
    return batch.finished_at + timedelta(days=days)


def expired_batches(before: datetime):
    return Batch.objects.exclude(status__in=ACTIVE_BATCH).filter(finished_at__lt=before)


def expired_items(before: datetime):
    return Interaction.objects.filter(batch__in=expired_batches(before))


def items_delete(before: datetime, size: ChunkSize) -> Iterator[int]:
    """Batch by batch, a chunk of items per transaction. The batch is read again in
    each: one retried meanwhile is no longer expired, and keeps its items."""
    for batch_id in list(expired_batches(before).order_by("pk").values_list("pk", flat=True)):
        while True:
            limit = size.value
            with transaction.atomic():
                items = expired_items(before).filter(batch_id=batch_id).order_by("row_number")
                pks = list(items.values_list("pk", flat=True)[:limit])
                Interaction.objects.filter(pk__in=pks).delete()
            if not pks:
                break
            yield len(pks)


def batches_delete(before: datetime, size: ChunkSize) -> Iterator[int]:
    # Through Django's collector: items left, webhook events, OpenAI links.
    return delete_in_chunks(lambda: expired_batches(before), size)


register(
    Purger(
        name="batch items",
        setting=SETTING,
        count=lambda before: expired_items(before).count(),
        chunks=items_delete,
        order=10,
    )
)
register(
    Purger(
        name="batches",
        setting=SETTING,
        count=lambda before: expired_batches(before).count(),
        chunks=batches_delete,
        order=20,
    )
)
