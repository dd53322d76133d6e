"""The database going away (a restart, a failover, a locked or full SQLite file) is
an outage, not a bug.

Requests answer it with a 503 (see batchsvc.api.errors); background work waits it out
with :func:`retry_while_unavailable`, which closes the broken connection, backs off
and tries again until the database answers.
"""

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable

import redis
from django.db import DatabaseError, InterfaceError, OperationalError, connections

logger = logging.getLogger("batchsvc.ops.outages")

# What Django raises when it cannot reach or use the database: refused or lost
# connections, timeouts, a locked or read-only SQLite file. Errors in what was
# sent (IntegrityError, DataError, ProgrammingError) are not outages.
DATABASE_ERRORS = (OperationalError, InterfaceError)
# Redis (CACHE_URL: throttle counters, the rate limits' lanes) cannot be reached.
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)
STORE_ERRORS = (*DATABASE_ERRORS, *REDIS_ERRORS)

FIRST_DELAY = 0.5  # seconds; doubles with each failure up to MAX_DELAY
MAX_DELAY = 5.0
# A failure this long after the one before starts a new outage, from FIRST_DELAY.
NEW_OUTAGE_AFTER = 60.0

DISK_FULL_SQLSTATE = "53100"


def is_disk_full(exc: BaseException) -> bool:
    """Whether the database refused a write for want of space: SQLite's
    SQLITE_FULL, PostgreSQL's disk_full."""
    cause = exc.__cause__
    return (
        getattr(cause, "sqlite_errorname", None) == "SQLITE_FULL"
        or getattr(cause, "sqlstate", None) == DISK_FULL_SQLSTATE
    )


def describe(exc: BaseException) -> str:
    """The error on one line, for a log line that needs no traceback."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


class Backoff:
    """Capped exponential waits, with jitter so that many workers coming back from
    one outage do not knock on the database all at once."""

    def __init__(self, first: float = FIRST_DELAY, cap: float = MAX_DELAY):
        self.first, self.cap = first, cap
        self.failures = 0
        self.failed_at = -NEW_OUTAGE_AFTER

    def next(self) -> float:
        now = time.monotonic()
        if now - self.failed_at > NEW_OUTAGE_AFTER:
            self.failures = 0
        self.failed_at = now
        self.failures += 1
        return self.delay(self.failures)

    def delay(self, failures: int) -> float:
        """The wait after ``failures`` failures in a row (for a caller that keeps the
        count itself, in a database row say)."""
        return min(self.cap, self.first * 2 ** (failures - 1)) * random.uniform(0.75, 1)


def close_connections() -> None:
    """Drop this thread's database connections, so that the next query opens a new
    one: after a lost connection Django keeps the broken one, and every query on it
    fails until it is closed."""
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            continue  # someone else's transaction: theirs to end
        with contextlib.suppress(DatabaseError):
            connection.close()


def retry_while_unavailable(
    step: Callable,
    *,
    what: str,
    stop: threading.Event | None = None,
    landed: Callable | None = None,
    errors: tuple[type[BaseException], ...] = DATABASE_ERRORS,
    store: str = "the database",
):
    """``step()``, tried again for as long as the database is unavailable (or another
    ``store``: ``errors`` are the exceptions that say so).

    Each failure is logged, this thread's connections are closed and the next try
    waits a little longer (:class:`Backoff`). Once ``stop`` is set the error is
    raised instead. ``landed()``, when given, is asked first on each retry whether
    the failed try took effect after all (a commit whose answer the outage lost):
    unless it returns None, what it returns is the result.
    """
    backoff, since = Backoff(), time.monotonic()
    attempt = step
    while True:
        try:
            result = attempt()
        except errors as exc:
            if stop is not None and stop.is_set():
                raise
            close_connections()
            delay = backoff.next()
            log_outage(what, exc, delay, backoff, store=store)
            if stop is None:
                time.sleep(delay)
            elif stop.wait(delay):
                raise
            attempt = step if landed is None else _landed_or(landed, step)
            continue
        if backoff.failures:
            logger.warning("%s: %s is back after %.1f s", what, store, time.monotonic() - since)
        return result


def log_outage(
    what: str, exc: BaseException, delay: float, backoff: Backoff, *, store: str = "the database"
) -> None:
    """A warning when an outage starts; each retry after it, an info line."""
    level = logging.WARNING if backoff.failures == 1 else logging.INFO
    logger.log(
        level,
        "%s: %s is unavailable (%s); trying again in %.1f s",
        what,
        store,
        describe(exc),
        delay,
    )


def _landed_or(landed: Callable, step: Callable) -> Callable:
    def attempt():
        result = landed()
        return step() if result is None else result

    return attempt
