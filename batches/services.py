"""Writes for batches. The API, the admin and the management commands all call these."""

import hashlib
import json
import os
import time
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from batches.engine.finishing import batch_finish
from batches.models import (
    ACTIVE_BATCH,
    NAME_MAX,
    RETRYABLE_BATCH,
    Batch,
    BatchAttempt,
    BatchPriority,
    BatchStatus,
    Interaction,
    InteractionStatus,
    Quota,
)
from batches.processors.base import get_processor, processor_names
from batches.spreadsheets.reading import read_upload
from batches.spreadsheets.rows import Sheet, TooLarge, UploadError
from batches.tasks import enqueue_batch
from batchsvc.api.errors import ApiError, Conflict, PayloadTooLarge
from batchsvc.api.inserts import insert_ignoring_conflicts
from batchsvc.api.schemas import JSONText

FINGERPRINT_CHUNK = 1024 * 1024


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
            # How far an XLSX may inflate; see batches.spreadsheets.reading for why.
            max_uncompressed=settings.BATCH_MAX_UNCOMPRESSED_BYTES,
            max_shared_strings=settings.BATCH_MAX_SHARED_STRINGS_BYTES,
            aliases=settings.BATCH_COLUMN_ALIASES,
        )
    except TooLarge as exc:
        # A body over its limit is a 413 wherever it is sent, this one included: a
        # client retries a 400 with a fix, and nothing fixes the size but less.
        message = f"{str(exc)[:-1]} (BATCH_MAX_UPLOAD_BYTES)."
        raise PayloadTooLarge(message) from None
    except UploadError as exc:
        raise ApiError(str(exc), details={"file": filename}) from None


def processor_check(*, processor: str, options) -> None:
    """Refuse an unknown processor, one this server is not configured for, or options
    it does not take (400, listing those it takes)."""
    if not isinstance(options, dict):
        raise ApiError("options must be a JSON object.")
    try:
        get_processor(processor, options).close()
    except ValueError as exc:
        raise ApiError(str(exc), details=getattr(exc, "details", None)) from None


def uploadable_check(*, processor: str) -> None:
    """Refuse a processor a spreadsheet upload may not name (400, listing those it may)."""
    if processor not in (names := processor_names()):
        raise ApiError(f"Unknown processor {processor!r}; choose one of: {', '.join(names)}.")


def queued_check(*, owner) -> None:
    """Refuse an upload over the owner's quota of batches queued or running (429)."""
    most = Quota.of(owner.pk if owner else None).queued_batches
    if most is None:
        return
    waiting = Batch.objects.filter(owner=owner, status__in=ACTIVE_BATCH).count()
    if waiting >= most:
        raise ApiError(
            f"You have {waiting} batches queued or running, as many as your quota allows "
            f"({most}); upload this one when one of them has ended.",
            status_code=429,
            details={"queued_batches": waiting, "quota": most},
        )


def schedule_check(*, priority: str = BatchPriority.NORMAL, concurrency=None) -> int | None:
    """Refuse a priority or concurrency outside the allowed values (400); the
    concurrency as a number (None: as many as BATCH_CONCURRENCY_MAX allows)."""
    if priority not in BatchPriority.values:
        raise ApiError(f"priority must be one of: {', '.join(BatchPriority.values)}.")
    if concurrency in (None, ""):
        return None
    limit = settings.BATCH_CONCURRENCY_MAX
    try:
        number = int(concurrency)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(concurrency, bool) or not 1 <= number <= limit:
        raise ApiError(
            f"concurrency must be a whole number from 1 to {limit} (BATCH_CONCURRENCY_MAX)."
        )
    return number


def batch_dry_run(
    *, upload, processor: str = "echo", options=None, priority="normal", concurrency=None
) -> dict:
    """What batch_create would make of the upload, creating nothing."""
    uploadable_check(processor=processor)
    processor_check(processor=processor, options={} if options is None else options)
    schedule_check(priority=priority, concurrency=concurrency)
    sheet = upload_read(upload=upload)
    return {**sheet.summary(), "dry_run": True}


def batch_create(
    *,
    owner,
    upload,
    name: str = "",
    processor: str = "echo",
    options=None,
    priority: str = BatchPriority.NORMAL,
    concurrency=None,
    idempotency_key: str = "",
    filename: str | None = None,
) -> Created:
    """Create a batch from an uploaded spreadsheet and queue it.

    1. Check the name, the key, the processor and its options (400).
    2. With an Idempotency-Key this owner has used before: the same request (same
       fingerprint) gets that batch back; a different one is a 422.
    3. Parse and validate the whole file (outside any transaction): any problem is
       a 400 and nothing is created.
    4. Insert the batch and its rows in one transaction; queue the task when it commits.
    """
    options = {} if options is None else options
    key_check(idempotency_key)
    if len(name) > NAME_MAX:
        raise ApiError(f"name is longer than {NAME_MAX} characters.")
    uploadable_check(processor=processor)
    processor_check(processor=processor, options=options)
    concurrency = schedule_check(priority=priority, concurrency=concurrency)
    source = os.path.basename(filename or getattr(upload, "name", "") or "")[:NAME_MAX]
    fingerprint = ""
    if idempotency_key:
        fingerprint = request_fingerprint(
            upload=upload, source=source, name=name, processor=processor, options=options
        )
        if earlier := by_key(owner, idempotency_key):
            return replayed(earlier, fingerprint)
    queued_check(owner=owner)
    sheet = upload_read(upload=upload, filename=filename)
    batch = Batch(
        owner=owner,
        name=name or source,
        processor=processor,
        options=options,
        priority=priority,
        concurrency=concurrency,
        columns=sheet.columns,
        total_items=len(sheet.rows),
        skipped_count=sheet.skipped_count,
        skipped_rows=sheet.skipped_rows,
        source_name=source,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
    )
    _batch_insert(batch, sheet)
    return Created(batch, created=True)


def _batch_insert(batch: Batch, sheet: Sheet) -> None:
    """The batch and its rows in one transaction, so no one ever sees half of it."""

    def insert():
        batch.save(force_insert=True)
        _insert_rows(batch, sheet)
        transaction.on_commit(partial(enqueue_batch, batch.pk))

    inserted_once(batch, insert)


def inserted_once(batch: Batch, insert) -> None:
    """``insert()`` (the batch saved, with all it brings) in one transaction. A
    request with the same Idempotency-Key that got there first was being created
    while this one was: the unique constraint refuses this one, which is a 409 (a
    422 if that request was a different one), as Stripe answers a concurrent retry."""
    try:
        with transaction.atomic():
            insert()
    except IntegrityError:
        key = batch.idempotency_key
        if not (key and (earlier := by_key(batch.owner, key))):
            raise
        replayed(earlier, batch.request_fingerprint)
        conflict = Conflict(
            "A request with this Idempotency-Key was being processed at the same time; "
            "send it again to get its answer.",
            details={"batch_id": str(earlier.pk)},
        )
        conflict.wait = 1  # Retry-After, in seconds
        raise conflict from None


def request_fingerprint(*, upload, source: str, name: str, processor: str, options) -> str:
    """sha256 over what makes an upload request: the file's name and bytes, the
    batch name, the processor and its options (as canonical JSON)."""
    fields = {"file": source, "name": name, "processor": processor, "options": options}
    head = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(len(head).to_bytes(8, "big") + head)
    position = upload.tell()
    while chunk := upload.read(FINGERPRINT_CHUNK):
        digest.update(chunk)
    upload.seek(position)
    return digest.hexdigest()


def key_check(key: str) -> None:
    if len(key) > NAME_MAX:
        raise ApiError(f"The Idempotency-Key header is longer than {NAME_MAX} characters.")


def replayed(earlier: Batch, fingerprint: str, *, what="file, name, processor or options"):
    """The earlier batch of the same request; 422 for a different request (``what``
    names what makes one). A batch made before fingerprints were kept has none, and
    answers any request."""
    if earlier.request_fingerprint and earlier.request_fingerprint != fingerprint:
        raise ApiError(
            f"This Idempotency-Key was already used for a different request (another "
            f"{what}); use a new key for a new request.",
            status_code=422,
            details={"batch_id": str(earlier.pk)},
        )
    return Created(earlier, created=False)


def by_key(owner, key: str) -> Batch | None:
    """The owner's batch created with this Idempotency-Key, if any."""
    return Batch.objects.filter(owner=owner, idempotency_key=key).first()


def _insert_rows(batch: Batch, sheet: Sheet) -> None:
    """One row per item, through the bulk engine's insert (faster than bulk_create),
    a chunk at a time: the rows on their way
    to the database are a chunk's, not the whole file's, whatever its size."""
    # A blank chat_id is a conversation of its own, keyed by its row number.
    conversations: dict[str | int, int] = {}
    for start in range(0, len(sheet.rows), INSERT_CHUNK):
        rows = []
        # Never cut: read_upload refuses a chat_id longer than the column.
        for number, chat_id, values in sheet.rows.texts(start, start + INSERT_CHUNK):
            rows.append(
                {
                    "batch": batch.pk,
                    "row_number": number,
                    "chat_id": chat_id,
                    "conversation": conversations.setdefault(
                        chat_id or number, len(conversations) + 1
                    ),
                    "input": JSONText(values),  # the spool's JSON, inserted as it is
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
    """Cancel a queued or processing batch: rows not started are cancelled at once; a
    row running now finishes and is recorded, and the batch is ``cancelling`` until
    then (``cancelled``, with its final counts, once none runs). Returns how many rows
    were cancelled; 409 when the batch has already ended."""
    now = timezone.now()
    with transaction.atomic():
        changed = Batch.objects.filter(pk=batch.pk, status__in=ACTIVE_BATCH).update(
            status=BatchStatus.CANCELLING, updated_at=now
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
        batch_finish(batch=batch)  # cancelled at once when none of its rows runs
    batch.refresh_from_db()
    return cancelled


def batch_retry_failed(*, batch: Batch, group: str = "", by=None) -> int:
    """Put a finished batch's failed rows (all, or those of one failure group) back to
    pending and queue the batch again; the retry is kept as an attempt. Returns how
    many rows; 409 when the batch is not finished or has no failed row (in the group)."""
    now = timezone.now()
    with transaction.atomic():
        locked = Batch.objects.select_for_update().get(pk=batch.pk)
        if locked.status not in RETRYABLE_BATCH:
            raise Conflict(_not_retryable(locked), details={"status": locked.status})
        failed = locked.interactions.filter(status=InteractionStatus.FAILED)
        if group:
            failed = failed.filter(error_group=group)
        retried = failed.update(
            status=InteractionStatus.PENDING,
            error="",
            error_group="",
            output=None,
            started_at=None,
            finished_at=None,
            claimed_by="",
        )
        if not retried:
            raise Conflict(
                f"The batch has no failed items in the group {group!r} to retry."
                if group
                else "The batch has no failed items to retry.",
                details={"group": group} if group else None,
            )
        BatchAttempt.objects.create(batch=locked, at=now, requeued=retried, by=by, group=group)
        # The time it processed so far is kept: its pace is over processing time only.
        earlier = locked.processing_seconds(now=now) or 0.0
        Batch.objects.filter(pk=batch.pk).update(
            status=BatchStatus.QUEUED,
            failed_items=F("failed_items") - retried,
            error="",
            finished_at=None,
            resumed_at=None,
            earlier_seconds=earlier,
            heartbeat_at=now,
            updated_at=now,
        )
        transaction.on_commit(partial(enqueue_batch, batch.pk))
    batch.refresh_from_db()
    return retried


def _not_retryable(batch: Batch) -> str:
    if batch.status == BatchStatus.PROCESSED:
        return "The batch has no failed items to retry: every item succeeded."
    if batch.status == BatchStatus.CANCELLED:
        return "The batch was cancelled; the failed items of a cancelled batch are not retried."
    return (
        f"The batch is still {batch.get_status_display().lower()}; failed items can be "
        "retried once it has completed."
    )


def batch_wait(*, batch: Batch, poll: float = 0.5, progress=None, timeout: float | None = None):
    """Refresh ``batch`` until it has ended (or ``timeout`` seconds passed); call
    ``progress(batch)`` after each look. Returns the batch as last read."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        batch.refresh_from_db()
        if progress is not None:
            progress(batch)
        if not batch.is_active or (deadline is not None and time.monotonic() >= deadline):
            return batch
        time.sleep(poll)
