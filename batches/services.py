"""Writes for batches. The API, the admin and the management commands all call these."""

import os
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from batches.models import (
    ACTIVE_BATCH,
    NAME_MAX,
    RETRYABLE_BATCH,
    Batch,
    BatchStatus,
    Interaction,
    InteractionStatus,
)
from batches.parsing import (
    CHAT_ID,
    Sheet,
    UploadError,
    read_upload,
)
from batches.processors import get_processor
from batchsvc.errors import ApiError, Conflict
from batchsvc.inserts import insert_ignoring_conflicts


@dataclass
class Created:
    batch: Batch
    created: bool
    """False when the Idempotency-Key named a batch made earlier."""


def upload_read(*, upload, filename: str | None = None) -> Sheet:
    """Parse and validate an uploaded spreadsheet, or raise a 400 that says why."""
    filename = os.path.basename(filename or getattr(upload, "name", "") or "")
    try:
        return read_upload(
            upload,
            filename=filename,
            max_rows=settings.BATCH_MAX_ROWS,
            max_bytes=settings.BATCH_MAX_UPLOAD_BYTES,
            # How far an XLSX may inflate; see batches.parsing for why.
            max_uncompressed=settings.BATCH_MAX_UNCOMPRESSED_BYTES,
            max_shared_strings=settings.BATCH_MAX_SHARED_STRINGS_BYTES,
        )
    except UploadError as exc:
        raise ApiError(str(exc), details={"file": filename}) from None


def processor_check(*, processor: str, options) -> None:
    """Refuse an unknown processor or options it does not accept (400)."""
    if not isinstance(options, dict):
        raise ApiError("options must be a JSON object.")
    try:
        get_processor(processor, options).close()
    except ValueError as exc:
        raise ApiError(str(exc)) from None


def batch_dry_run(*, upload, processor: str = "echo", options=None) -> dict:
    """What batch_create would make of the upload, creating nothing."""
    processor_check(processor=processor, options={} if options is None else options)
    sheet = upload_read(upload=upload)
    return {**sheet.summary(), "dry_run": True}


def batch_create(
    *,
    owner,
    upload,
    name: str = "",
    processor: str = "echo",
    options=None,
    idempotency_key: str = "",
    filename: str | None = None,
) -> Created:
    """Create a batch from an uploaded spreadsheet and queue it.

    1. With an idempotency key this owner has used before, return that batch.
    2. Check the processor and options, then parse and validate the whole file
       (outside any transaction): any problem is a 400 and nothing is created.
    3. Insert the batch and its rows in one transaction; queue the task when it commits.
    """
    options = {} if options is None else options
    if len(idempotency_key) > NAME_MAX:
        raise ApiError(f"The Idempotency-Key header is longer than {NAME_MAX} characters.")
    if len(name) > NAME_MAX:
        raise ApiError(f"name is longer than {NAME_MAX} characters.")
    if idempotency_key and (earlier := _by_key(owner, idempotency_key)):
        return Created(earlier, created=False)
    processor_check(processor=processor, options=options)
    sheet = upload_read(upload=upload, filename=filename)
    source = os.path.basename(filename or getattr(upload, "name", "") or "")[:NAME_MAX]
    try:
        with transaction.atomic():
            batch = Batch.objects.create(
                owner=owner,
                name=name or source,
                processor=processor,
                options=options,
                columns=sheet.columns,
                total_items=len(sheet.rows),
                source_name=source,
                idempotency_key=idempotency_key,
            )
            _insert_rows(batch, sheet)
            transaction.on_commit(partial(_enqueue, batch.pk))
    except IntegrityError:
        # Two requests with one key at the same time: the constraint chose one.
        if idempotency_key and (earlier := _by_key(owner, idempotency_key)):
            return Created(earlier, created=False)
        raise
    return Created(batch, created=True)


def _by_key(owner, key: str) -> Batch | None:
    return Batch.objects.filter(owner=owner, idempotency_key=key).first()


def _enqueue(batch_id) -> None:
    from batches.tasks import enqueue_batch

    enqueue_batch(batch_id)


def _insert_rows(batch: Batch, sheet: Sheet) -> None:
    """One row per item, through the bulk engine's insert (a third of the time of
    bulk_create on a 10,000-row upload), a chunk at a time: the rows on their way
    to the database are a chunk's, not the whole file's, whatever its size."""
    # A blank chat_id is a conversation of its own, keyed by its row number.
    conversations: dict[str | int, int] = {}
    for start in range(0, len(sheet.rows), INSERT_CHUNK):
        rows = []
        for row in sheet.rows[start : start + INSERT_CHUNK]:
            # Never cut: read_upload refuses a chat_id longer than the column.
            chat_id = str(row.values.get(CHAT_ID) or "")
            rows.append(
                {
                    "batch": batch.pk,
                    "row_number": row.number,
                    "chat_id": chat_id,
                    "conversation": conversations.setdefault(
                        chat_id or row.number, len(conversations) + 1
                    ),
                    "input": row.values,
                    "status": InteractionStatus.PENDING.value,
                    "error": "",
                    "attempts": 0,
                    "claimed_by": "",
                }
            )
        # A new batch has no rows yet: nothing conflicts, every row is inserted.
        insert_ignoring_conflicts(Interaction, rows, key="row_number")


INSERT_CHUNK = 5000


def batch_cancel(*, batch: Batch) -> int:
    """Cancel a queued or processing batch: rows not started are cancelled (a row
    running now finishes and is recorded). Returns how many rows were cancelled;
    409 when the batch has already ended."""
    now = timezone.now()
    with transaction.atomic():
        changed = Batch.objects.filter(pk=batch.pk, status__in=ACTIVE_BATCH).update(
            status=BatchStatus.CANCELLED, finished_at=now, updated_at=now
        )
        if not changed:
            batch.refresh_from_db(fields=["status"])
            raise Conflict(
                f"The batch is {batch.get_status_display().lower()}; only a queued or "
                "processing batch can be cancelled.",
                details={"status": batch.status},
            )
        cancelled = batch.interactions.pending().update(
            status=InteractionStatus.CANCELLED, finished_at=now
        )
        Batch.objects.filter(pk=batch.pk).update(cancelled_items=cancelled)
    batch.refresh_from_db()
    return cancelled


def batch_retry_failed(*, batch: Batch) -> int:
    """Put a finished batch's failed rows back to pending and queue the batch again.
    Returns how many rows; 409 when the batch is not finished or has no failed row."""
    now = timezone.now()
    with transaction.atomic():
        locked = Batch.objects.select_for_update().get(pk=batch.pk)
        if locked.status not in RETRYABLE_BATCH:
            raise Conflict(
                f"The batch is {locked.get_status_display().lower()}; failed items can be "
                "retried once it has completed.",
                details={"status": locked.status},
            )
        retried = locked.interactions.filter(status=InteractionStatus.FAILED).update(
            status=InteractionStatus.PENDING,
            error="",
            output=None,
            started_at=None,
            finished_at=None,
            claimed_by="",
        )
        if not retried:
            raise Conflict("The batch has no failed items to retry.")
        Batch.objects.filter(pk=batch.pk).update(
            status=BatchStatus.QUEUED,
            failed_items=0,
            error="",
            finished_at=None,
            heartbeat_at=now,
            updated_at=now,
        )
        transaction.on_commit(partial(_enqueue, batch.pk))
    batch.refresh_from_db()
    return retried
