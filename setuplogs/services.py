"""Writes for log lines. The API (single and batch append) calls these."""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from batchsvc.api.bulk import ItemError, first_occurrences, validate_items
from batchsvc.api.errors import ApiError
from batchsvc.api.inserts import insert_new
from setuplogs.models import CLIENT_ID_MAX, LogEntry, LogLevel
from setuplogs.schemas import RESERVED_CLIENT_ID_PREFIX, LogLineIn
from setuplogs.selectors import last_seq, stored_client_ids
from traces.models import Run
from traces.selectors import run_not_found

_COLUMNS = ["run", "seq", "timestamp", "level", "message", "client_id", "received_at"]


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


def log_lines_append(*, run: Run, lines: Sequence[msgspec.Raw], dropped: int = 0) -> AppendResult:
    """Append a batch of raw lines (JSON text, see batchsvc.api.bulk) to ``run``.

    1. Decode every line once; invalid ones are skipped and reported by index.
    2. Of lines repeating a client_id within the request, keep the first.
    3. ``dropped`` > 0 (lines the client lost) adds a warning line before them.
    4. In one transaction that holds the run's append lock, number the lines
       after the run's last seq and insert them in one statement. When the
       (run, client_id) constraint refuses one (a resend of lines stored by an
       earlier request: duplicates), that insert is undone, the lines whose
       client_id the run holds are left out and the others numbered again, with
       no gap. New lines, the usual case, so cost no look-up of their ids, and the
       constraint, not a pre-check, decides what is a duplicate.
    """
    valid, skipped = validate_items(lines, LogLineIn)
    return _append(run, valid, skipped, dropped)


def _append(run: Run, valid: list, skipped: list[ItemError], dropped: int) -> AppendResult:
    # Lines without a client_id are never duplicates: each gets a key of its own.
    firsts, repeats = first_occurrences(valid, key=lambda line: line.client_id or object())
    batch = [line for _, line in firsts]
    if dropped:
        batch.insert(0, _dropped_line(dropped, batch))
    result = AppendResult(duplicates=len(repeats), skipped=skipped)
    if not batch:
        return result
    with transaction.atomic():
        _lock(run)
        last = last_seq(run)
        rows = _numbered(run, batch, after=last)
        try:
            with transaction.atomic():
                insert_new(LogEntry, rows, key="seq", columns=_COLUMNS)
        except IntegrityError:
            # A resend after a lost answer: its stored lines get no seq, so none is skipped.
            stored = stored_client_ids(run, [line.client_id for line in batch if line.client_id])
            new = [line for line in batch if not (line.client_id and line.client_id in stored)]
            rows = _numbered(run, new, after=last)
            insert_new(LogEntry, rows, key="seq", columns=_COLUMNS)
    ours = batch[0].client_id if dropped else None  # the warning line is ours, not the client's
    result.seqs = [seq for _, seq, _, _, _, client_id, _ in rows if client_id != ours]
    result.duplicates += len(batch) - (1 if dropped else 0) - result.added
    return result


def log_line_append(*, run: Run, raw: msgspec.Raw) -> tuple[LogEntry, bool]:
    """Append one raw line; return the stored line and whether it is new (False: its
    client_id was stored already). An invalid line is a 400."""
    valid, skipped = validate_items([raw], LogLineIn)
    if skipped:
        raise ApiError(f"Log line not stored: {skipped[0].error}.")
    line = valid[0][1]
    result = _append(run, valid, [], 0)
    if result.added:
        return LogEntry.objects.get(run=run, seq=result.seqs[0]), True
    return LogEntry.objects.get(run=run, client_id=line.client_id), False


def _numbered(run: Run, lines: list[LogLineIn], *, after: int) -> list[tuple]:
    """Rows of ``lines`` in :data:`_COLUMNS`' order, numbered from ``after`` + 1."""
    now = timezone.now()
    return [
        (run.pk, seq, line.timestamp or now, line.level, line.message, line.client_id, now)
        for seq, line in enumerate(lines, start=after + 1)
    ]


def _lock(run: Run) -> None:
    """Serialise appends to ``run``.

    SQLite needs no lock: our transactions are IMMEDIATE, so writers already queue
    at BEGIN. PostgreSQL locks the run row; the last seq is read by a separate,
    later statement (:func:`last_seq`) because under READ COMMITTED a
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
