"""Retention: how long finished work is kept, and the purge that deletes what is older.

batchsvc knows no app by name: each app registers a :class:`Purger` for what it keeps,
from its ``AppConfig.ready()``, and the ``purge`` command and the worker's periodic
sweep run every registered purger in order. A purger names the setting that says how
many days to keep its objects (empty: forever), counts what is older (for
``--dry-run``) and deletes it in chunks, each chunk its own short transaction, with a
pause after each so that the requests waiting for the database get their turn. The
chunks are sized by time, not rows: a run weighs more than a log line, and a busy
machine deletes fewer rows in the same time.
"""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from batchsvc.ops.outages import DATABASE_ERRORS, describe

logger = logging.getLogger("batchsvc.ops.retention")

CHUNK = 2000  # rows per transaction, at most
FIRST_CHUNK = 100  # rows of the first transaction of each purger, then sized by time
CHUNK_SECONDS = 0.05  # what a transaction should take
# After each chunk the purge waits as long as the chunk took, never less than PAUSE_MIN
# (longer than the waits between SQLite's tries for its lock, so that a writer waiting
# for the lock gets it) nor more than PAUSE_MAX: it holds the database at most half
# the time.
PAUSE_MIN, PAUSE_MAX = 0.05, 0.5


class ChunkSize:
    """Rows for the next transaction: grown or shrunk after each chunk so that one
    takes about CHUNK_SECONDS, between 1 and ``limit``. Purgers read ``value`` before
    each chunk."""

    def __init__(self, limit: int):
        self.limit = limit
        self.value = min(limit, FIRST_CHUNK)

    def took(self, seconds: float, rows: int) -> None:
        if rows and seconds > 0:
            wanted = rows * CHUNK_SECONDS / seconds
            self.value = max(1, min(self.limit, round(wanted), self.value * 4))


def delete_in_chunks(expired: Callable[[], QuerySet], size: ChunkSize) -> Iterator[int]:
    """Delete the rows ``expired()`` selects, in primary-key order, at most
    ``size.value`` per transaction, through Django's collector (so whatever hangs off
    a row goes with it) reading only the keys; yield how many each time."""
    after = None
    while True:
        with transaction.atomic():
            rows = expired().order_by("pk")
            if after is not None:
                rows = rows.filter(pk__gt=after)
            pks = list(rows.values_list("pk", flat=True)[: size.value])
            if not pks:
                return
            rows.model.objects.filter(pk__in=pks).only("pk").delete()
        after = pks[-1]
        yield len(pks)


@dataclass(frozen=True)
class Purger:
    name: str
    """What it deletes, plural: "runs", "log lines"."""
    setting: str
    """The setting with the days to keep them (None: forever)."""
    count: Callable[[datetime], int]
    """How many are older than the cut-off."""
    chunks: Callable[[datetime, ChunkSize], Iterator[int]]
    """Delete them, at most ``size.value`` per transaction; yield how many each time."""
    order: int = 0
    """Purgers run from the lowest order: what hangs off an object goes before it."""


@dataclass
class Outcome:
    purger: Purger
    days: int | None
    before: datetime | None
    count: int = 0
    """Deleted, or on a dry run, that would be."""

    @property
    def kept_forever(self) -> bool:
        return self.days is None


# Written only while Django starts (AppConfig.ready) and read-only after.
_registry: dict[str, Purger] = {}


def register(purger: Purger) -> Purger:
    if purger.name in _registry:
        raise ImproperlyConfigured(f"A purger named {purger.name!r} is already registered.")
    _registry[purger.name] = purger
    return purger


def purgers() -> list[Purger]:
    return sorted(_registry.values(), key=lambda purger: purger.order)


def retention_settings() -> list[str]:
    """The settings the purgers read, each once, in purge order."""
    return list(dict.fromkeys(purger.setting for purger in purgers()))


def days_kept(setting: str) -> int | None:
    days = getattr(settings, setting)
    if days is not None and days < 0:
        raise ImproperlyConfigured(f"{setting} must be 0 or more days, not {days}.")
    return days


def cutoff(days: int | None, *, now: datetime) -> datetime | None:
    return None if days is None else now - timedelta(days=days)


def purge(
    *,
    days: dict[str, int | None] | None = None,
    dry_run: bool = False,
    chunk: int = CHUNK,
    progress: Callable[[Purger, int], None] | None = None,
    stop: threading.Event | None = None,
) -> list[Outcome]:
    """Delete what every purger finds older than its days (``days`` by setting name
    overrides the settings). ``progress(purger, deleted)`` is called after each chunk;
    once ``stop`` is set, the purge ends after the chunk it is on."""
    now = timezone.now()
    outcomes = []
    for purger in purgers():
        kept = (days or {}).get(purger.setting, days_kept(purger.setting))
        outcome = Outcome(purger, kept, cutoff(kept, now=now))
        outcomes.append(outcome)
        if outcome.before is None:
            continue
        if dry_run:
            outcome.count = purger.count(outcome.before)
            continue
        size = ChunkSize(chunk)
        chunks = purger.chunks(outcome.before, size)
        while True:
            started = time.monotonic()
            deleted = next(chunks, None)
            if deleted is None:
                break
            took = time.monotonic() - started
            size.took(took, deleted)
            outcome.count += deleted
            if progress is not None:
                progress(purger, deleted)
            if stop is not None and stop.is_set():
                return outcomes
            _wait(max(PAUSE_MIN, min(PAUSE_MAX, took)), stop)
    return outcomes


def _wait(seconds: float, stop: threading.Event | None) -> None:
    if stop is not None:
        stop.wait(seconds)
    else:
        time.sleep(seconds)


def sweep_forever(*, every: float, stop: threading.Event) -> None:
    """The worker's sweep: a purge every ``every`` seconds until ``stop`` is set."""
    while not stop.wait(every):
        try:
            outcomes = purge(stop=stop)
        except DATABASE_ERRORS as exc:
            logger.warning("Retention sweep: the database is unavailable (%s)", describe(exc))
        except Exception:
            logger.exception("Retention sweep failed")
        else:
            if deleted := [f"{o.count:,} {o.purger.name}" for o in outcomes if o.count]:
                logger.info("Retention sweep deleted %s", ", ".join(deleted))
        finally:
            connection.close()
