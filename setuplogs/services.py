"""Writes for log lines. The API (single and batch append) calls these."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from django.db import connection, transaction
from django.utils import timezone

from batchsvc.bulk import ItemError, first_occurrences, validate_items
from batchsvc.errors import ApiError
from batchsvc.inserts import insert_ignoring_conflicts
from batchsvc.schemas import describe
from setuplogs.models import CLIENT_ID_MAX, LogEntry, LogLevel
from setuplogs.schemas import RESERVED_CLIENT_ID_PREFIX, LogLineIn
from setuplogs.selectors import append_position
from traces.models import Run
from traces.selectors import run_not_found


@dataclass
class AppendResult:
    """What a batch append did: lines stored (their seqs, in request order),
    duplicates refused, invalid lines skipped."""

    seqs: list[int] = field(default_factory=list)
    duplicates: int = 0
    skipped: list[ItemError] = field(default_factory=list)

    @property
    def added(self) -> int:
        return len(self.seqs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": True,
            "logs_added": self.added,
            "duplicates": self.duplicates,
            "skipped": [{"index": s.index, "error": s.error} for s in self.skipped],
        }


def log_lines_append(*, run: Run, lines: Sequence, dropped: int = 0) -> AppendResult:
    """Append a batch of lines (raw JSON values or :class:`LogLineIn`) to ``run``.

    1. Validate every line; invalid ones are skipped and reported by index.
    2. Of lines repeating a client_id within the request, keep the first.
    3. ``dropped`` > 0 (lines the client lost) adds a warning line before them.
    4. In one transaction that holds the run's append lock, leave out the lines
       whose client_id the run holds (stored by an earlier request: duplicates),
       number the others after the run's last seq, with no gap, and insert them
       in one statement. The lock makes the look-up safe; ON CONFLICT DO NOTHING
       and the (run, client_id) constraint still guard the invariant.
    """
    valid, skipped = validate_items(lines, LogLineIn)
    # Lines without a client_id are never duplicates: each gets a key of its own.
    firsts, repeats = first_occurrences(valid, key=lambda line: line.client_id or object())
    batch = [line for _, line in firsts]
    if dropped:
        batch.insert(0, _dropped_line(dropped, batch))
    result = AppendResult(duplicates=len(repeats), skipped=skipped)
    if not batch:
        return result
    now = timezone.now()
    with transaction.atomic():
        _lock(run)
        # A resend after a lost answer: its stored lines get no seq, so none is skipped.
        last, stored = append_position(run, [line.client_id for line in batch if line.client_id])
        new = [line for line in batch if not (line.client_id and line.client_id in stored)]
        rows = [
            {
                "run": run.pk,
                "seq": last + position,
                "timestamp": line.timestamp or now,
                "level": line.level,
                "message": line.message,
                "client_id": line.client_id,
                "received_at": now,
            }
            for position, line in enumerate(new, start=1)
        ]
        inserted = insert_ignoring_conflicts(LogEntry, rows, key="seq")
    ours = batch[0].client_id if dropped else None  # the warning line is ours, not the client's
    result.seqs = [
        row["seq"] for i, row in enumerate(rows) if i in inserted and row["client_id"] != ours
    ]
    result.duplicates += len(batch) - (1 if dropped else 0) - result.added
    return result


def log_line_append(*, run: Run, raw: Any) -> tuple[LogEntry, bool]:
    """Append one line; return the stored line and whether it is new (False: its
    client_id was stored already). An invalid line is a 400."""
    try:
        line = msgspec.convert(raw, LogLineIn)
    except msgspec.ValidationError as exc:
        raise ApiError(f"Log line not stored: {describe(exc, LogLineIn)}.") from None
    result = log_lines_append(run=run, lines=[line])
    if result.added:
        return LogEntry.objects.get(run=run, seq=result.seqs[0]), True
    return LogEntry.objects.get(run=run, client_id=line.client_id), False


def _lock(run: Run) -> None:
    """Serialise appends to ``run``.

    SQLite needs no lock: our transactions are IMMEDIATE, so writers already queue
    at BEGIN. PostgreSQL locks the run row; the last seq is read by a separate,
    later statement (:func:`append_position`) because under READ COMMITTED a
    statement sees only what was committed when it started, and the previous lock
    holder commits while we wait.
    """
    locks = connection.features.has_select_for_update
    if locks and not Run.objects.select_for_update().filter(pk=run.pk).values_list("pk"):
        raise run_not_found(run.run_id)  # deleted since the view looked it up


def _dropped_line(dropped: int, batch: list[LogLineIn]) -> LogLineIn:
    """The warning that records lost lines. Its client_id derives from the batch
    (its lines' client_ids, or their content when they have none) in a namespace
    clients cannot use, so a retried batch records the loss once and no line of the
    client's can pass for it."""
    return LogLineIn(
        message=f"client dropped {dropped} lines",
        level=LogLevel.WARNING.value,
        client_id=dropped_client_id(dropped, batch),
    )


def dropped_client_id(dropped: int, batch: list[LogLineIn]) -> str:
    ids = [line.client_id for line in batch if line.client_id]
    source = ids or [f"{line.timestamp}|{line.level}|{line.message}" for line in batch]
    digest = hashlib.sha256("\n".join([str(dropped), *source]).encode()).hexdigest()
    return f"{RESERVED_CLIENT_ID_PREFIX}{digest}"[:CLIENT_ID_MAX]
