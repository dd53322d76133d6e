"""Writes of the OpenAI-compatible Batch API: files stored and deleted, batches
created and cancelled. A batch is made here as a batches.Batch of the ``openai_batch``
processor, one Interaction per line, then run by the same engine as any batch."""

import hashlib
import json
import os
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from batches import services as batch_services
from batches.models import Batch, BatchPriority, Interaction, InteractionStatus
from batches.processors.passthrough import lines_per_claim
from batches.tasks import enqueue_batch
from batchsvc.api.inserts import insert_ignoring_conflicts
from batchsvc.api.schemas import JSONText
from openai_api import ids, lines
from openai_api.errors import NotFound, OpenAIError
from openai_api.files import storage, stored_chunks, upload_name
from openai_api.models import File, FilePurpose, Lines, OpenAIBatch

PROCESSOR = "openai_batch"
CANCELLED = ("cancelling", "cancelled")
COMPLETION_WINDOWS = ("24h",)
METADATA_PAIRS, METADATA_KEY_MAX, METADATA_VALUE_MAX = 16, 64, 512
INSERT_CHUNK = 5000


# Files ------------------------------------------------------------------------


def file_create(*, owner, upload, purpose: str, expires_after=None) -> File:
    """Store an uploaded input file as ``owner``'s, streamed into the storage."""
    if purpose != FilePurpose.BATCH:
        raise OpenAIError(
            f"purpose must be 'batch', not {purpose!r}: only batch input files are kept here.",
            param="purpose",
        )
    if upload is None:
        raise OpenAIError("file is missing: send the file as multipart form data.", param="file")
    limit = settings.OPENAI_BATCH_MAX_BYTES
    if upload.size > limit:
        raise file_too_large(upload.size)
    now = timezone.now()
    file = File(
        owner=owner,
        purpose=purpose,
        filename=os.path.basename(upload.name or "")[:255] or "upload.jsonl",
        bytes=upload.size,
        created_at=now,
        expires_at=now + timedelta(seconds=expires_after) if expires_after else None,
    )
    name = storage().save(upload_name(file.id), upload)
    file.storage_name = name
    try:
        file.save(force_insert=True)
    except BaseException:
        storage().delete(name)
        raise
    return file


def file_too_large(size: int) -> OpenAIError:
    limit = settings.OPENAI_BATCH_MAX_BYTES
    return OpenAIError(
        f"The file is {size} bytes, over the limit of {limit} bytes (OPENAI_BATCH_MAX_BYTES).",
        param="file",
        code="file_too_large",
    )


def file_delete(*, file: File) -> None:
    """Delete the file and, once that is committed, its bytes."""
    name = file.storage_name
    with transaction.atomic():
        file.delete()
        if name:
            transaction.on_commit(partial(storage().delete, name))


# Batches ------------------------------------------------------------------------

# What makes a create request, in the 422 for an Idempotency-Key used for another.
REQUEST_PARTS = (
    "input file, endpoint, window, metadata, output expiry, priority, concurrency or rates"
)


def batch_create(
    *,
    owner,
    input_file_id: str,
    endpoint: str,
    completion_window: str,
    metadata=None,
    output_expires_after: int | None = None,
    priority: str = BatchPriority.NORMAL,
    concurrency=None,
    rate_options: dict | None = None,
    idempotency_key: str = "",
) -> Batch:
    """Check the request and every line of its input file, then create the batch, its
    rows and its two result files in one transaction, and queue it. Any refusal is a
    400 (the line's number in its sentence) and creates nothing. With an
    Idempotency-Key the owner has used before, the same request gets that batch back
    (a different one is a 422), as on /api/v1/batches/."""
    batch_services.key_check(idempotency_key)
    check_request(endpoint=endpoint, completion_window=completion_window, metadata=metadata)
    fingerprint = ""
    if idempotency_key:
        request = {
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": completion_window,
            "metadata": metadata,
            "priority": priority,
            "concurrency": concurrency,
            "rate_options": rate_options or {},
        }
        if output_expires_after:  # only when given: keys used before keep their prints
            request["output_expires_after"] = output_expires_after
        canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
        fingerprint = hashlib.sha256(canonical.encode()).hexdigest()
        if earlier := batch_services.by_key(owner, idempotency_key):
            return batch_services.replayed(earlier, fingerprint, what=REQUEST_PARTS).batch
    input_file = owned_input_file(owner, input_file_id)
    now = timezone.now()
    expires_at = window_end(now)
    options = {"endpoint": endpoint, "expires_at": int(expires_at.timestamp())}
    options.update(rate_options or {})
    batch_services.processor_check(processor=PROCESSOR, options=options)
    concurrency = batch_services.schedule_check(priority=priority, concurrency=concurrency)
    batch_services.queued_check(owner=owner)  # the owner's quota of batches, as for uploads
    summary = checked_lines(input_file, endpoint)
    batch = Batch(
        owner=owner,
        name=input_file.filename,
        processor=PROCESSOR,
        options=options,
        priority=priority,
        concurrency=concurrency,
        columns=["custom_id", "method", "url", "body"],
        total_items=summary.count,
        source_name=input_file.filename,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
    )
    link = OpenAIBatch(
        batch=batch,
        input_file_uuid=input_file.pk,
        endpoint=endpoint,
        completion_window=completion_window,
        metadata=metadata,
        model=summary.model[:255],
        expires_at=expires_at,
    )
    # OpenAI counts a result file's expiry from when it is complete: ours fill as lines
    # end, and are complete by the end of the window at the latest.
    results_expire_at = (
        expires_at + timedelta(seconds=output_expires_after) if output_expires_after else None
    )
    batch_insert(batch, link, input_file, created_at=now, results_expire_at=results_expire_at)
    return batch


def check_request(*, endpoint: str, completion_window: str, metadata) -> None:
    if completion_window not in COMPLETION_WINDOWS:
        raise OpenAIError(
            f"completion_window must be '24h', not {completion_window!r}.",
            param="completion_window",
        )
    check_metadata(metadata)
    refused_as_400(lines.check_endpoint, endpoint)


def window_end(created_at):
    """When the batch's window ends: in whole seconds, as the batch object shows it,
    so that no line is sent after the second it shows."""
    window = timedelta(seconds=settings.OPENAI_BATCH_WINDOW_SECONDS)
    return (created_at + window).replace(microsecond=0)


def batch_insert(
    batch: Batch, link: OpenAIBatch, input_file: File, *, created_at, results_expire_at
) -> None:
    def insert():
        batch.save(force_insert=True)
        # created_at as the window counts from it (auto_now_add took its own clock).
        Batch.objects.filter(pk=batch.pk).update(created_at=created_at)
        batch.created_at = created_at
        insert_rows(batch, input_file)
        link.output_file = result_file(batch, Lines.OUTPUT, results_expire_at)
        link.error_file = result_file(batch, Lines.ERROR, results_expire_at)
        link.save(force_insert=True)
        transaction.on_commit(partial(enqueue_batch, batch.pk))

    batch_services.inserted_once(batch, insert)


def check_metadata(metadata) -> None:
    if metadata is None:
        return
    if not isinstance(metadata, dict) or len(metadata) > METADATA_PAIRS:
        raise OpenAIError(
            f"metadata must be an object of at most {METADATA_PAIRS} key-value pairs.",
            param="metadata",
        )
    for key, value in metadata.items():
        if len(key) > METADATA_KEY_MAX or not isinstance(value, str):
            raise OpenAIError(
                f"metadata keys are at most {METADATA_KEY_MAX} characters and its values "
                f"text; {key[:80]!r} is not.",
                param="metadata",
            )
        if len(value) > METADATA_VALUE_MAX:
            raise OpenAIError(
                f"metadata value of {key!r} is longer than {METADATA_VALUE_MAX} characters.",
                param="metadata",
            )


def owned_input_file(owner, input_file_id: str) -> File:
    """The owner's batch input file so named; another owner's is as missing as none."""
    pk = ids.file_pk(input_file_id)
    file = File.objects.owned_by(owner).unexpired().filter(pk=pk).first() if pk else None
    if file is None:
        raise NotFound(f"No such File object: {input_file_id}.", param="input_file_id")
    if file.bytes > settings.OPENAI_BATCH_MAX_BYTES:
        raise file_too_large(file.bytes)
    if file.purpose != FilePurpose.BATCH:
        raise OpenAIError(
            f"The file {input_file_id} has purpose {file.purpose!r}; a batch's input file "
            "must have been uploaded with purpose 'batch'.",
            param="input_file_id",
        )
    return file


def checked_lines(input_file: File, endpoint: str) -> lines.Summary:
    chunks = stored_chunks(input_file.storage_name)
    return refused_as_400(
        lines.check, chunks, endpoint=endpoint, max_lines=settings.OPENAI_BATCH_MAX_LINES
    )


def refused_as_400(check, *args, **kwargs):
    try:
        return check(*args, **kwargs)
    except lines.Refused as exc:
        param = "endpoint" if exc.code == "unsupported_endpoint" else "input_file_id"
        raise OpenAIError(str(exc), param=param, code=exc.code) from None


def insert_rows(batch: Batch, input_file: File) -> None:
    """One pending row per line, its input the line as it was sent (never decoded and
    encoded again), a chunk of lines at a time. Lines are independent: they share a
    conversation number in runs only so that a claim takes several (the processor
    sends each alone, without history). Every other column takes its default (NULL
    where it may: writing those out cost a third of the time)."""
    fields = [
        field
        for field in Interaction._meta.concrete_fields
        if not (field.primary_key or field.null)
    ]
    columns = [field.name for field in fields]
    defaults = [field.get_default() for field in fields]
    at = {name: columns.index(name) for name in ("batch", "row_number", "conversation", "input")}
    defaults[columns.index("status")] = InteractionStatus.PENDING.value
    defaults[at["batch"]] = batch.pk
    rows, run = [], lines_per_claim(batch.total_items)
    for number, raw in lines.numbered(stored_chunks(input_file.storage_name)):
        row = defaults.copy()
        row[at["row_number"]] = number
        row[at["conversation"]] = (number - 1) // run + 1
        row[at["input"]] = JSONText(raw.decode())
        rows.append(row)
        if len(rows) == INSERT_CHUNK:
            insert_ignoring_conflicts(Interaction, rows, key="row_number", columns=columns)
            rows = []
    insert_ignoring_conflicts(Interaction, rows, key="row_number", columns=columns)


def result_file(batch: Batch, which: str, expires_at) -> File:
    return File.objects.create(
        owner=batch.owner,
        purpose=FilePurpose.BATCH_OUTPUT,
        filename=f"batch_{batch.pk.hex}_{which}.jsonl",
        batch=batch,
        lines=which,
        created_at=batch.created_at,
        expires_at=expires_at,
    )


def batch_cancel(*, batch: Batch) -> None:
    """Cancel the batch: ``cancelling`` at once, lines not started never sent (see
    batches.services.batch_cancel). A batch already cancelling or cancelled is left
    as it is, as OpenAI answers."""
    if batch.status not in CANCELLED:
        OpenAIBatch.objects.filter(pk=batch.pk, cancel_requested_at=None).update(
            cancel_requested_at=timezone.now()
        )
        batch_services.batch_cancel(batch=batch)
