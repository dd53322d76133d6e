"""What a worker run tells the database while it works: the heartbeats of its running
rows and of the batches it works on, and the batches' counters."""

import logging
import threading
import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext, suppress
from datetime import timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone

from batches.engine import sql
from batches.models import Batch, Interaction, InteractionStatus
from batchsvc.ops.outages import DATABASE_ERRORS, retry_while_unavailable

logger = logging.getLogger("batches.processing")

FLUSH_ITEMS = 10
FLUSH_SECONDS = 1.0

# Set when this worker process is asked to stop (SIGTERM, SIGINT; see the db_worker
# command): conversations end after their current row, leaving the rest pending for
# the next worker. Process state, like the signal it stands for, not request state.
stopping = threading.Event()


def stale_after() -> timedelta:
    return timedelta(seconds=settings.BATCH_STALE_AFTER)


def heartbeat_interval() -> float:
    """Seconds between heartbeats: often enough that a live worker never looks stale."""
    return max(0.05, min(FLUSH_SECONDS, settings.BATCH_STALE_AFTER / 4))


class Progress:
    """The rows a run's threads hold, and the items they ended not yet counted."""

    def __init__(self, *, announced):
        self.announced = announced
        self.running: dict[int, object] = {}
        self.counts: dict[object, list[int]] = defaultdict(lambda: [0, 0])
        self.flushed_at = time.monotonic()
        self.lock = threading.Lock()
        self.done = threading.Event()
        # SQLite has one writer at a time. Our threads queue for it on this lock,
        # handed over at once, rather than in SQLite's busy handler, which sleeps in
        # steps of milliseconds.
        self.writing = threading.Lock() if connection.vendor == "sqlite" else nullcontext()
        self.writer = None

    @contextmanager
    def ending(self):
        """The cursor the run's threads end their rows with (sql.end_and_start).

        On SQLite, the run's one writing connection, in a transaction committed at the
        end of the block; the threads take turns: a connection drops its whole page
        cache whenever another one has written, so a connection per thread read every
        page again for each row it ended. Elsewhere, the thread's own connection, each
        statement committed as it runs: a row's end and the next row's start are one
        statement there."""
        if connection.vendor != "sqlite":
            with connection.cursor() as cursor:
                yield cursor
            return
        with self.writing:
            writer = self._writer()
            try:
                with writer.wrap_database_errors:
                    cursor = writer.connection.cursor()
                    cursor.execute("BEGIN IMMEDIATE")
                    try:
                        yield cursor
                    except BaseException:
                        writer.connection.rollback()
                        raise
                    cursor.execute("COMMIT")
            except DATABASE_ERRORS:
                self.close()  # the next transaction opens a connection afresh
                raise

    def _writer(self):
        if self.writer is None:
            self.writer = connections.create_connection(DEFAULT_DB_ALIAS)
            self.writer.inc_thread_sharing()
        self.writer.ensure_connection()
        return self.writer

    def close(self) -> None:
        """Close the run's SQLite writing connection, if it opened one."""
        writer, self.writer = self.writer, None
        if writer is not None:
            with suppress(DATABASE_ERRORS):  # it was broken: closed all the same
                writer.close()

    def hold(self, pk: int, batch_id) -> None:
        with self.lock:
            self.running[pk] = batch_id

    def release(self, pk: int) -> None:
        with self.lock:
            self.running.pop(pk, None)

    def running_in(self, batch_id) -> int:
        with self.lock:
            return sum(1 for held in self.running.values() if held == batch_id)

    def add(self, batch_id, *, ok: bool) -> None:
        with self.lock:
            self.counts[batch_id][0 if ok else 1] += 1

    def take(self, *, force: bool = False, batch_id=None) -> dict:
        """The counts to write now (none when not due yet), reset to zero."""
        with self.lock:
            ended = sum(s + f for s, f in self.counts.values())
            due = ended >= FLUSH_ITEMS or time.monotonic() - self.flushed_at >= FLUSH_SECONDS
            if not (due or force):
                return {}
            if batch_id is not None:
                return {batch_id: self.counts.pop(batch_id, [0, 0])}
            counts, self.counts = dict(self.counts), defaultdict(lambda: [0, 0])
            self.flushed_at = time.monotonic()
            return counts

    def flush(self, *, force: bool = False, batch_id=None) -> None:
        for pk, (succeeded, failed) in self.take(force=force, batch_id=batch_id).items():
            if succeeded or failed:
                retry_while_unavailable(
                    lambda pk=pk, s=succeeded, f=failed: self.add_counts(pk, s, f),
                    what=f"Batch {pk}: counters",
                    stop=stopping,
                )

    def add_counts(self, batch_id, succeeded: int, failed: int) -> None:
        with self.writing:
            sql.add_counts(batch_id, succeeded=succeeded, failed=failed)

    # The heartbeat thread --------------------------------------------------------

    def heartbeat(self) -> None:
        try:
            while not self.done.wait(heartbeat_interval()):
                try:
                    retry_while_unavailable(self.beat, what="Worker heartbeat", stop=self.done)
                except DATABASE_ERRORS:
                    pass  # the run ended while the database was away
                except Exception:
                    logger.exception("Worker run heartbeat failed")
        finally:
            connection.close()

    def beat(self) -> None:
        now = timezone.now()
        with self.lock:
            running = dict(self.running)
        batches = {self.announced, *running.values()}
        with self.writing:
            if running:
                Interaction.objects.filter(pk__in=running, status=InteractionStatus.RUNNING).update(
                    heartbeat_at=now
                )
            Batch.objects.filter(pk__in=batches).update(heartbeat_at=now)
        self.flush()
