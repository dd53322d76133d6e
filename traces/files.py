"""Writing trace files: the one service behind ``POST /traces/write`` and
``POST /traces/write-batch``. It talks to ``storages["traces"]`` only, so the
files go wherever that storage keeps them (a directory, a bucket)."""

import contextvars
import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import msgspec
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.db import connection, transaction
from django.utils.html import format_html

from batchsvc.api.bulk import echoed, first_occurrences, validate_items
from traces.models import TraceFile
from traces.paths import storage_name
from traces.s3 import PendingObject, S3FilesStorage
from traces.schemas import TraceFileIn
from traces.storage import (
    Directories,
    StagedFile,
    TraceStorage,
    close_all,
    describe_os_error,
)

logger = logging.getLogger("traces.files")


def trace_storage() -> Storage:
    return storages["traces"]


@dataclass
class FileOutcome:
    """What happened to one file of a request."""

    index: int
    file_name: str | None
    file_path: str | None = None
    id: int | None = None
    size: int | None = None
    bytes_written: int | None = None
    sha256: str | None = None
    error: str | None = None

    @property
    def success(self) -> bool:
        return self.error is None

    def fail(self, error: str) -> None:
        """Nothing of this file was kept: no figures that suggest otherwise."""
        self.error = error
        self.size = self.bytes_written = self.sha256 = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.id,
            "file_name": self.file_name,
            "success": self.success,
            "file_path": self.file_path,
            "size": self.size,
            "bytes_written": self.bytes_written,
            "sha256": self.sha256,
            "error": self.error,
        }


@dataclass
class WriteResult:
    """Per-file outcomes in request order, and the batch's figures."""

    outcomes: list[FileOutcome]
    elapsed_ms: float = 0.0
    summary: dict[str, Any] = field(init=False)

    def __post_init__(self):
        written = [o for o in self.outcomes if o.success]
        self.summary = {
            "total_files": len(self.outcomes),
            "successful": len(written),
            "failed": len(self.outcomes) - len(written),
            "total_bytes": sum(o.bytes_written for o in written),
            "processing_time_ms": round(self.elapsed_ms, 3),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": self.summary["successful"] > 0,
            "summary": self.summary,
            "results": [o.as_dict() for o in self.outcomes],
        }


def trace_files_write(*, owner, items: list[msgspec.Raw]) -> WriteResult:
    """Write a batch of raw trace files (JSON text, see batchsvc.api.bulk) as
    ``owner``'s; one bad file fails alone.
    Paths are the owner's: the files go to the owner's namespace in the storage.

    1. Decode every item once, as :class:`TraceFileIn` (fields, path safety,
       size). A path repeated in the batch fails its repeats. A run_id need not
       be stored yet (see :class:`traces.models.TraceFile`).
    2. Stage the valid files outside any transaction: the slow part on a disk,
       writing and flushing the bytes under temporary names. A storage that
       cannot stage saves them here instead.
    3. In one short transaction, lock the batch's paths, publish the staged
       files (renames; on S3, the PUTs, in parallel) and upsert the rows of those
       published (unique path): two requests writing one path change its file and
       its row in the same order. An OS error fails that file only.
    4. Log one line with the batch's figures.
    """
    started = time.perf_counter()
    outcomes = [FileOutcome(index=i, file_name=None) for i in range(len(items))]
    files = _valid_files(items, outcomes, owner)
    try:
        _stage_files(trace_storage(), files)
        _publish(owner, [file for file in files if file.outcome.success])
    finally:
        close_all(file.handle for file in files if isinstance(file.handle, StagedFile))
    result = WriteResult(outcomes, elapsed_ms=(time.perf_counter() - started) * 1000)
    _log(result)
    return result


class _Saved:
    """Stands in for a staged file when the storage saved it in one step."""

    def publish(self) -> None:
        pass


@dataclass(slots=True)
class _File:
    """A valid file on its way to the storage: its path and bytes worked out once."""

    outcome: FileOutcome
    path: str
    storage_name: str
    content: bytes
    run_id: str | None
    handle: StagedFile | _Saved | None = None


def _valid_files(items: list, outcomes: list[FileOutcome], owner) -> list[_File]:
    valid, invalid = validate_items(items, TraceFileIn)
    for index, item in valid:
        outcomes[index].file_name = item.file_name
    for error in invalid:
        outcomes[error.index].file_name = echoed(items[error.index], ("file_name",))[0]
        outcomes[error.index].error = error.error
    # An empty run_id means no run, as absent or null does.
    files = []
    for i, item in valid:
        path = item.path
        stored_as = storage_name(owner.pk, path)
        files.append(_File(outcomes[i], path, stored_as, item.content, item.run_id or None))
    firsts, repeats = first_occurrences(((f.outcome.index, f) for f in files), key=lambda f: f.path)
    for index, first in repeats.items():
        outcomes[index].error = f"file {first} of this request writes the same path"
    for _, file in firsts:
        file.outcome.file_path = file.path
    return [file for _, file in firsts]


def _stage_files(storage: Storage, files: list[_File]) -> None:
    """Stage every file. Our storage writes them one after another in the request's
    thread (a few microseconds each), then flushes them all at once (the slow
    part: the disk overlaps flushes it is given together). On S3 they wait for
    their PUTs (the publish). Another storage saves them in parallel: they wait on
    a bucket, not the CPU."""
    if isinstance(storage, S3FilesStorage):
        for file in files:
            _stage_one(storage, None, file)
        return
    if not isinstance(storage, TraceStorage):
        _in_parallel(partial(_stage_one, storage, None), files)
        return
    with storage.directories() as opened:
        for file in files:
            _stage_one(storage, opened, file, sync=False)
    _in_parallel(_sync_one, [file for file in files if file.outcome.success])


def _in_parallel(work, files: list[_File]) -> None:
    """``work(file)`` for every file, the request's own thread taking the first."""
    helpers = min(len(files), settings.TRACES_WRITE_THREADS) - 1
    if helpers < 1:
        for file in files:
            work(file)
        return
    # A pool per request: nothing shared between requests or processes.
    with ThreadPoolExecutor(max_workers=helpers, thread_name_prefix="trace-write") as pool:
        # Each helper runs in a copy of the request's context: its log lines
        # carry the request id.
        pending = [pool.submit(contextvars.copy_context().run, work, file) for file in files[1:]]
        work(files[0])
        for future in pending:
            future.result()


def _stage_one(storage: Storage, directories: Directories | None, file: _File, *, sync=True):
    """Give the file its handle and figures, or its error."""
    outcome = file.outcome
    try:
        if isinstance(storage, TraceStorage):
            file.handle = storage.stage(
                file.storage_name, [file.content], directories=directories, sync=sync
            )
            outcome.size = file.handle.size
        elif isinstance(storage, S3FilesStorage):
            file.handle = storage.stage(file.storage_name, [file.content])
            outcome.size = file.handle.size
        else:
            outcome.size = _save_replacing(storage, file.storage_name, file.content)
            file.handle = _Saved()
    except OSError as exc:
        outcome.fail(describe_os_error(exc))
    except SuspiciousFileOperation:
        outcome.fail("the path leaves the storage root or goes through a symbolic link")
    except Exception:
        # Another storage backend's own error (a bucket's, say): fail this file,
        # keep the others, and give operators the traceback.
        logger.exception("Storage error writing trace file %r", file.storage_name)
        outcome.fail("the storage could not write the file")
    else:
        outcome.bytes_written = len(file.content)
        outcome.sha256 = hashlib.sha256(file.content).hexdigest()


def _sync_one(file: _File) -> None:
    try:
        file.handle.sync()
    except OSError as exc:
        file.outcome.fail(describe_os_error(exc))


def _publish(owner, files: list[_File]) -> None:
    if not files:
        return
    with transaction.atomic():
        _lock_paths([file.storage_name for file in files])
        if isinstance(files[0].handle, PendingObject):
            _in_parallel(_publish_one, files)  # PUTs to a bucket: each a round trip
        else:
            for file in files:  # renames: microseconds each
                _publish_one(file)
        _save_rows(owner, [file for file in files if file.outcome.success])


def _publish_one(file: _File) -> None:
    try:
        file.handle.publish()
    except OSError as exc:
        file.outcome.fail(describe_os_error(exc))


def _lock_paths(paths: list[str]) -> None:
    """Make writers of the same paths take turns until their transactions end.

    PostgreSQL: transaction-level advisory locks on a hash of each path, taken
    in sorted order so that two batches cannot deadlock. SQLite needs nothing:
    an IMMEDIATE transaction holds the database's single write lock.
    """
    if connection.vendor != "postgresql":
        return
    keys = sorted({_lock_key(path) for path in paths})
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(k) FROM unnest(%s::bigint[]) AS k", [keys])


def _lock_key(path: str) -> int:
    """A signed 64-bit number for a path, as pg_advisory_xact_lock takes."""
    return int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "big", signed=True)


def _save_replacing(storage: Storage, path: str, content: bytes) -> int:
    """Save ``content`` at exactly ``path``, replacing what is there; return the
    stored size. Our storage and S3 overwrite in one step; a storage that would
    pick another name instead gets the old file deleted first."""
    if storage.get_available_name(path) != path:
        storage.delete(path)
    saved = storage.save(path, ContentFile(content))
    if saved != path:  # someone wrote the path between our delete and our save
        storage.delete(saved)
        raise OSError(f"another write of {path!r} was under way")
    return storage.size(saved)


def _save_rows(owner, files: list[_File]) -> None:
    """Upsert one row per written file and give each outcome its row's id."""
    if not files:
        return
    files = sorted(files, key=lambda file: file.path)  # same lock order in every batch
    rows = [
        TraceFile(
            owner=owner,
            path=file.path,
            storage_name=file.storage_name,
            size=file.outcome.bytes_written,
            sha256=file.outcome.sha256,
            run_id=file.run_id,
        )
        for file in files
    ]
    # One INSERT .. ON CONFLICT (owner, path) DO UPDATE .. RETURNING id.
    TraceFile.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["owner", "path"],
        update_fields=["size", "sha256", "run_id", "updated_at"],
    )
    for file, row in zip(files, rows, strict=True):
        file.outcome.id = row.pk


def _log(result: WriteResult) -> None:
    s = result.summary
    logger.info(
        "trace files written: total=%d successful=%d failed=%d bytes=%d ms=%.1f",
        s["total_files"],
        s["successful"],
        s["failed"],
        s["total_bytes"],
        s["processing_time_ms"],
        extra={"trace_batch": s},
    )


def trace_files_preview(*, trace_file: TraceFile) -> str:
    """HTML for the admin: a text file's content (cut at the preview limit), or a
    sentence saying why it is not shown."""
    limit = settings.TRACES_ADMIN_PREVIEW_BYTES
    try:
        with trace_storage().open(trace_file.storage_name, "rb") as stream:
            head = stream.read(limit + 1)
    except (OSError, SuspiciousFileOperation):
        return "The file is missing from the storage."
    cut = len(head) > limit
    text = _text(head[:limit], cut=cut)
    if text is None:
        return f"Binary file ({trace_file.size} bytes): not shown."
    note = f"\n… cut at {limit} of {trace_file.size} bytes" if cut else ""
    return format_html('<pre class="batchsvc-trace">{}{}</pre>', text, note)


def _text(data: bytes, *, cut: bool) -> str | None:
    """``data`` as text, or None when it is not UTF-8 text (or holds NUL)."""
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        # A cut may fall inside a character: drop that incomplete last one.
        if not (cut and exc.end == len(data) and exc.start >= len(data) - 3):
            return None
        text = data[: exc.start].decode()
    return None if "\x00" in text else text
