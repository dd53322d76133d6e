"""Retention of log lines: the lines of the runs RETAIN_RUNS_DAYS lets go
(traces.retention), deleted before their runs, in chunks of lines rather than of
runs, so that a run with a million lines is never one long transaction."""

from collections.abc import Iterator
from datetime import datetime

from django.db import transaction

from batchsvc.ops.retention import ChunkSize, Purger, register
from setuplogs.models import LogEntry
from traces.retention import expired_runs


def expired_lines(before: datetime):
    return LogEntry.objects.filter(run__in=expired_runs(before))


def lines_delete(before: datetime, size: ChunkSize) -> Iterator[int]:
    """The lines of expired runs, taken in run order: each chunk looks at the next
    runs from where the last one ended, never at runs already emptied."""
    after = 0
    while True:
        limit = size.value
        with transaction.atomic():
            runs = list(
                expired_runs(before)
                .filter(pk__gt=after)
                .order_by("pk")
                .values_list("pk", flat=True)[:limit]
            )
            if not runs:
                return
            lines = list(
                LogEntry.objects.filter(run_id__in=runs)
                .order_by("run_id", "seq")
                .values_list("pk", "run_id")[:limit]
            )
            LogEntry.objects.filter(pk__in=[pk for pk, _ in lines]).delete()
        # A full chunk may have left lines of its last run: start from that run again.
        after = lines[-1][1] - 1 if len(lines) == limit else runs[-1]
        yield len(lines)  # even 0: the purge pauses after each transaction


register(
    Purger(
        name="log lines",
        setting="RETAIN_RUNS_DAYS",
        count=lambda before: expired_lines(before).count(),
        chunks=lines_delete,
        order=10,
    )
)
