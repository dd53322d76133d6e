"""Retention of runs and trace files: what is older than RETAIN_RUNS_DAYS and
RETAIN_TRACE_FILES_DAYS, deleted in chunks by the purge (batchsvc.ops.retention).

A run's log lines go first (setuplogs.retention), then the run. A trace file leaves
the storage in the transaction that deletes its row, holding the lock writers of its
path take (traces.files), so that a file written again meanwhile is never deleted.
"""

from collections.abc import Iterator
from datetime import datetime

from django.db import transaction

from batchsvc.ops.retention import ChunkSize, Purger, delete_in_chunks, register
from traces.files import _lock_paths, trace_storage
from traces.models import Run, TraceFile

FILES_CHUNK = 200  # a storage deletes files one by one: fewer per transaction


def expired_runs(before: datetime):
    """Runs that started before ``before`` and have not changed since."""
    return Run.objects.filter(start_time__lt=before, updated_at__lt=before)


def runs_delete(before: datetime, size: ChunkSize) -> Iterator[int]:
    return delete_in_chunks(lambda: expired_runs(before), size)


def expired_trace_files(before: datetime):
    """Trace files last written before ``before`` (updated_at is never before created_at,
    so the created_at index narrows the search)."""
    return TraceFile.objects.filter(created_at__lt=before, updated_at__lt=before)


def trace_files_delete(before: datetime, size: ChunkSize) -> Iterator[int]:
    storage, after = trace_storage(), 0
    while True:
        limit = min(size.value, FILES_CHUNK)
        with transaction.atomic():
            rows = list(
                expired_trace_files(before)
                .filter(pk__gt=after)
                .order_by("pk")
                .values_list("pk", "storage_name")[:limit]
            )
            if not rows:
                return
            _lock_paths([name for _, name in rows])
            # Read again under the lock: a file written since is kept.
            gone = list(
                expired_trace_files(before)
                .filter(pk__in=[pk for pk, _ in rows])
                .values_list("pk", "storage_name")
            )
            TraceFile.objects.filter(pk__in=[pk for pk, _ in gone]).delete()
            for _, name in gone:
                storage.delete(name)
        after = rows[-1][0]
        yield len(gone)


register(
    Purger(
        name="runs",
        setting="RETAIN_RUNS_DAYS",
        count=lambda before: expired_runs(before).count(),
        chunks=runs_delete,
        order=20,
    )
)
register(
    Purger(
        name="trace files",
        setting="RETAIN_TRACE_FILES_DAYS",
        count=lambda before: expired_trace_files(before).count(),
        chunks=trace_files_delete,
        order=30,
    )
)
