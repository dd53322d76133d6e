"""Writes for runs. The API, the admin and ``import_runs`` all call these."""

import uuid
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import msgspec
from django.db import transaction
from django.utils import timezone
from msgspec.structs import astuple

from batchsvc.api.bulk import echoed, first_occurrences, validate_items
from batchsvc.api.errors import ApiError
from batchsvc.api.inserts import insert_ignoring_conflicts
from traces.importing import NotJSON, chunked
from traces.models import Run
from traces.schemas import (
    RunBatchResult,
    RunChanges,
    RunIn,
    RunItemError,
    RunItemResult,
    check_times,
)

CREATED, EXISTING, FAILED = "created", "existing", "failed"
ROLLED_BACK = "rolled_back"  # valid and new, but not stored: another item failed the batch
_COLUMNS = [*RunIn.__struct_fields__, "owner", "created_at", "updated_at"]
_ECHOED = ("event_id", "run_id")


def runs_ingest(
    *, owner, items: list[msgspec.Raw], atomic: bool, dry_run: bool = False
) -> RunBatchResult:
    """Store a batch of raw runs (JSON text, see batchsvc.api.bulk) as ``owner``'s.
    Identifiers are unique per owner: another owner's runs are never read, touched
    or revealed.

    1. Decode every item once, as :class:`RunIn`.
    2. Keep the first occurrence of each event_id (later ones are ``existing``) and
       of each run_id (a later one with another event_id fails).
    3. Insert the rest with ON CONFLICT DO NOTHING; what the database refused is
       ``existing`` when its event_id is stored, else a run_id clash.

    Atomic mode stores nothing unless every item is created or existing. Rejected
    and dry-run batches are still classified item by item (with one read) so the
    caller learns every problem in one round trip.
    """
    valid, invalid = validate_items(items, RunIn)
    failures = {error.index: error.error for error in invalid}
    firsts, repeats = first_occurrences(valid, key=attrgetter("event_id"))
    runs = Run.objects.owned_by(owner)
    firsts, clashes = _claim_run_ids(firsts, runs)
    by_index = dict(valid)
    for index, first in clashes.items():
        failures[index] = (
            f"run_id {by_index[index].run_id!r} is also used by item {first} with another event_id"
        )

    rolled_back = False
    if dry_run or (atomic and failures):
        outcomes = _classify(firsts, runs)
        rolled_back = atomic and not dry_run
    else:
        with transaction.atomic():
            outcomes = _insert(firsts, owner, runs)
            if atomic and any(outcome not in (CREATED, EXISTING) for outcome in outcomes.values()):
                transaction.set_rollback(True)
                rolled_back = True

    for index, outcome in outcomes.items():
        if outcome not in (CREATED, EXISTING):
            failures[index] = outcome
    for index, first in repeats.items():
        if first in failures:
            failures[index] = failures[first]
    if rolled_back:
        outcomes = {i: ROLLED_BACK if o == CREATED else o for i, o in outcomes.items()}
    results, errors = _results(items, by_index, failures, outcomes, repeats)
    counted = [item.result for item in results if item.result != ROLLED_BACK]
    return RunBatchResult(
        runs=results,
        total=len(results),
        created=counted.count(CREATED),
        existing=counted.count(EXISTING),
        failed=counted.count(FAILED),
        errors=errors,
        rolled_back=rolled_back,
        dry_run=dry_run,
    )


def _claim_run_ids(firsts: list[tuple[int, RunIn]], runs) -> tuple[list, dict[int, int]]:
    """Keep one item per run_id; the others clash with it. Normally the first in the
    request wins, but when the run_id is stored already, its own event does: that is
    a retry, ``existing``, and the newcomers are the clash. One read, only when a
    run_id is repeated with different event_ids."""
    kept, clashes = first_occurrences(firsts, key=attrgetter("run_id"))
    if not clashes:
        return kept, clashes
    contested = {run.run_id for index, run in firsts if index in clashes}
    holder = dict(runs.filter(run_id__in=contested).values_list("run_id", "event_id"))
    # A stable sort: each stored holder moves ahead of its rivals, all else keeps its order.
    ranked = sorted(
        firsts, key=lambda pair: holder.get(pair[1].run_id, pair[1].event_id) != pair[1].event_id
    )
    kept, clashes = first_occurrences(ranked, key=attrgetter("run_id"))
    return sorted(kept, key=lambda pair: pair[0]), clashes


def _results(items, valid, failures, outcomes, repeats):
    results, errors = [], []
    for index, raw in enumerate(items):
        run = valid.get(index)
        if run is not None:
            event_id, run_id = str(run.event_id), run.run_id
        else:
            event_id, run_id = _echo(raw)
        if index in failures:
            results.append(RunItemResult(index, event_id, run_id, FAILED))
            errors.append(RunItemError(index, event_id, failures[index]))
        else:
            result = EXISTING if index in repeats else outcomes[index]
            results.append(RunItemResult(index, event_id, run_id, result))
    return results, errors


def _echo(raw: msgspec.Raw) -> tuple[str | None, str | None]:
    """An invalid run's event_id and run_id as it sent them, the event_id in one
    spelling when it is a UUID at all, however the batch fared."""
    event_id, run_id = echoed(raw, _ECHOED)
    if event_id is not None:
        with suppress(ValueError):
            event_id = str(uuid.UUID(event_id))
    return event_id, run_id


def _clash(run: RunIn) -> str:
    return f"run_id {run.run_id!r} is already used by a run with another event_id"


def _insert(firsts: list[tuple[int, RunIn]], owner, runs) -> dict[int, str]:
    now = timezone.now()
    rows = [(*astuple(run), owner.pk, now, now) for _, run in firsts]
    inserted = insert_ignoring_conflicts(Run, rows, key="event_id", columns=_COLUMNS)
    refused = [run.event_id for position, (_, run) in enumerate(firsts) if position not in inserted]
    stored = (
        set(runs.filter(event_id__in=refused).values_list("event_id", flat=True))
        if refused
        else set()
    )
    return {
        index: CREATED
        if position in inserted
        else EXISTING
        if run.event_id in stored
        else _clash(run)
        for position, (index, run) in enumerate(firsts)
    }


def _classify(firsts: list[tuple[int, RunIn]], runs) -> dict[int, str]:
    """What :func:`_insert` would do, read-only."""
    # A UNION rather than an OR: SQLite without statistics answers the OR by
    # reading every run of the owner, each of the two unique indexes unused.
    by_event = runs.filter(event_id__in=[run.event_id for _, run in firsts])
    by_run_id = runs.filter(run_id__in=[run.run_id for _, run in firsts])
    fields = ("event_id", "run_id")
    stored = (
        by_event.order_by().values_list(*fields).union(by_run_id.order_by().values_list(*fields))
    )
    holder_of = {run_id: event_id for event_id, run_id in stored}
    stored_events = set(holder_of.values())
    outcomes = {}
    for index, run in firsts:
        if run.event_id in stored_events:
            outcomes[index] = EXISTING
        elif holder_of.get(run.run_id, run.event_id) != run.event_id:
            outcomes[index] = _clash(run)
        else:
            outcomes[index] = CREATED
    return outcomes


def run_update(*, run: Run, changes: RunChanges) -> Run:
    """Apply a PATCH. Saves only the fields sent, so two agents updating different
    fields of one run do not overwrite each other."""
    fields = changes.as_fields()
    if "end_time" in fields:
        try:
            check_times(run.start_time, fields["end_time"])
        except ValueError as exc:
            raise ApiError(f"Run not changed: {exc}.") from None
    for name, value in fields.items():
        setattr(run, name, value)
    run.save(update_fields=[*fields, "updated_at"])
    return run


@dataclass
class ImportSummary:
    total: int = 0
    created: int = 0
    existing: int = 0
    failed: int = 0
    rolled_back: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)


def runs_import(*, owner, items, atomic: bool, chunk_size: int, progress=None) -> ImportSummary:
    """Store runs from an iterable of raw runs of any length, ``chunk_size`` at a
    time, through :func:`runs_ingest`. Items that could not even be read
    (``NotJSON``) fail in place.

    Atomic imports are all-or-nothing across every chunk: the first chunk with a
    failure rolls the whole import back and stops it.
    """
    summary = ImportSummary()
    # A lenient import commits chunk by chunk; an atomic one holds one transaction.
    with transaction.atomic() if atomic else nullcontext():
        for chunk in chunked(items, chunk_size):
            offset = summary.total
            unreadable = [(i, item) for i, item in enumerate(chunk) if isinstance(item, NotJSON)]
            readable = [item for item in chunk if not isinstance(item, NotJSON)]
            positions = [i for i, item in enumerate(chunk) if not isinstance(item, NotJSON)]
            result = runs_ingest(owner=owner, items=readable, atomic=atomic) if readable else None
            summary.total += len(chunk)
            for i, item in unreadable:
                summary.failed += 1
                summary.errors.append({"index": offset + i, "event_id": None, "error": item.error})
            if result is not None:
                summary.created += result.created
                summary.existing += result.existing
                summary.failed += result.failed
                summary.errors.extend(
                    {
                        "index": offset + positions[error.index],
                        "event_id": error.event_id,
                        "error": error.error,
                    }
                    for error in result.errors
                )
            if progress is not None:
                progress(len(chunk))
            if atomic and summary.failed:
                transaction.set_rollback(True)
                summary.rolled_back = True
                break
    summary.errors.sort(key=lambda error: error["index"])
    return summary
