"""Running a batch inside a worker, and recovering what dead workers left behind.

One task run (:func:`batch_process`) works on one batch:

1. marks it processing and, when there are more conversations than it has threads,
   queues one more task for the batch so that another idle worker can join in;
2. runs BATCH_CONCURRENCY threads; each claims a whole conversation (its head row,
   see batches.models) and runs its rows in order, each with the conversation's
   earlier exchanges as history, until no conversation is left to claim;
3. a heartbeat thread refreshes the running rows and the batch every second and
   writes the counters (at least every 10 items or every second);
4. when no row is left unfinished, sets the final status with exact counters.

Ending one row and starting the next is one transaction with conditional UPDATEs:
a row starts only while it is still pending (a cancel turned it ``cancelled``: the
conversation stops before the row starts) and ends only while its thread still owns
it (a worker whose heartbeat went stale and whose conversation was taken over
records nothing). So a row that has ended is never run again.

Claims lock the head row with SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL, so
workers sharing a batch never claim one conversation twice; on SQLite every write
transaction is IMMEDIATE (settings), which serialises claims.

The database going away is waited out (batchsvc.outages): each step that touches it
(a claim, an item's end, a heartbeat, the counters, the task as a whole) is tried
again until the database answers, and a claim or an end whose commit landed before
the connection broke is recognised by its claim token rather than done twice. An
item is never failed because the database was away.
"""

import contextvars
import json
import logging
import threading
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from batches.models import (
    ACTIVE_BATCH,
    Batch,
    BatchStatus,
    Interaction,
    InteractionStatus,
)
from batches.processors import Processor, ProcessorError, get_processor
from batchsvc import metrics
from batchsvc.outages import DATABASE_ERRORS, retry_while_unavailable

logger = logging.getLogger("batches.processing")

FLUSH_ITEMS = 10
FLUSH_SECONDS = 1.0

# Set when this worker process is asked to stop (SIGTERM, SIGINT; see the db_worker
# command): conversations end after their current row, leaving the rest pending for
# the next worker. Process state, like the signal it stands for, not request state.
stopping = threading.Event()


class WorkerLost(Exception):
    """Recorded on a task whose worker stopped sending heartbeats."""


def stale_after() -> timedelta:
    return timedelta(seconds=settings.BATCH_STALE_AFTER)


def heartbeat_interval() -> float:
    """Seconds between heartbeats: often enough that a live worker never looks stale."""
    return max(0.05, min(FLUSH_SECONDS, settings.BATCH_STALE_AFTER / 4))


@dataclass
class Item:
    pk: int
    input: dict


@dataclass
class Claim:
    """A conversation a thread holds: its running head, the rows after it, its past."""

    token: str
    head: Item
    rest: list[Item]
    history: list[dict]


@dataclass
class Counter:
    """Items ended by this task run and not yet added to the batch's counters."""

    succeeded: int = 0
    failed: int = 0
    flushed_at: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *, ok: bool) -> None:
        with self.lock:
            if ok:
                self.succeeded += 1
            else:
                self.failed += 1

    def take(self, *, force: bool = False) -> tuple[int, int]:
        """The counts to write now (zero when not due yet), reset to zero."""
        with self.lock:
            due = self.succeeded + self.failed >= FLUSH_ITEMS or (
                time.monotonic() - self.flushed_at >= FLUSH_SECONDS
            )
            if not (due or force):
                return 0, 0
            counts = self.succeeded, self.failed
            self.succeeded = self.failed = 0
            self.flushed_at = time.monotonic()
            return counts


def batch_process(*, batch_id, worker_id: str | None = None) -> dict:
    """Work on a batch until nothing is left to claim; see the module docstring.

    A database outage on the way is waited out and the work taken up again from
    the database's state, as a restarted worker would."""
    worker_id = worker_id or uuid.uuid4().hex
    return retry_while_unavailable(
        lambda: _batch_process(batch_id, worker_id), what=f"Batch {batch_id}", stop=stopping
    )


def _batch_process(batch_id, worker_id: str) -> dict:
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None:
        return {"batch_id": str(batch_id), "status": "missing"}
    if batch.status in ACTIVE_BATCH:
        if batch.status == BatchStatus.QUEUED:
            batch.mark_processing()
        try:
            get_processor(batch.processor, batch.options).close()
        except ValueError as exc:
            batch_fail(batch=batch, error=str(exc))
        else:
            BatchRun(batch, worker_id).run()
    batch_finish(batch=batch)
    batch.refresh_from_db(fields=["status", "processed_items", "failed_items"])
    return {
        "batch_id": str(batch.pk),
        "status": batch.status,
        "processed_items": batch.processed_items,
        "failed_items": batch.failed_items,
    }


class BatchRun:
    """One task run's threads on one batch."""

    def __init__(self, batch: Batch, worker_id: str):
        self.batch = batch
        self.worker_id = worker_id
        self.concurrency = max(1, settings.BATCH_CONCURRENCY)
        self.counter = Counter()
        self.running: set[int] = set()
        self.running_lock = threading.Lock()
        self.done = threading.Event()
        # SQLite has one writer at a time. Our threads queue for it on this lock,
        # handed over at once, rather than in SQLite's busy handler, which sleeps in
        # steps of milliseconds (4 threads ran echo at half the speed of 1).
        self.writing = threading.Lock() if connection.vendor == "sqlite" else nullcontext()
        # Compiled once: building this query with the ORM cost more than running it.
        with transaction.atomic():  # select_for_update compiles only inside one
            self.heads_sql = _claim_sql(Interaction.objects.heads(batch), "interaction_pending")

    def run(self) -> None:
        self.invite_helper()
        # Each thread runs in a copy of this context, so its log lines name the batch.
        heartbeat = threading.Thread(
            target=contextvars.copy_context().run,
            args=(self.heartbeat,),
            name="batch-heartbeat",
            daemon=True,
        )
        heartbeat.start()
        threads = [
            threading.Thread(
                target=contextvars.copy_context().run,
                args=(self.work, n),
                name=f"batch-{n}",
                daemon=True,
            )
            for n in range(self.concurrency)
        ]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            self.done.set()
            heartbeat.join()
        self.flush(force=True)
        if stopping.is_set():
            self.hand_over()

    def hand_over(self) -> None:
        """Stopped early: queue the batch again, for whichever worker is next."""
        from batches.tasks import enqueue_batch

        if Interaction.objects.filter(batch=self.batch, status="pending").exists():
            enqueue_batch(self.batch.pk)
            logger.warning("Batch %s: worker stopping; queued again", self.batch.pk)

    def invite_helper(self) -> None:
        """More conversations than threads: queue another task for this batch, which
        a free worker picks up (and which finds nothing to do if none is free until
        this one has finished)."""
        from batches.tasks import enqueue_batch

        heads = Interaction.objects.heads(self.batch)
        if heads[self.concurrency : self.concurrency + 1].exists():
            enqueue_batch(self.batch.pk)

    # Threads ---------------------------------------------------------------------

    def work(self, number: int) -> None:
        token = f"{self.worker_id}/{number}"
        try:
            with get_processor(self.batch.processor, self.batch.options) as processor:
                while not stopping.is_set() and (claim := self.claim(token)) is not None:
                    self.run_conversation(claim, processor)
        except Exception:
            logger.exception("Batch %s: worker thread %s stopped", self.batch.pk, token)
        finally:
            connection.close()

    def heartbeat(self) -> None:
        what = f"Batch {self.batch.pk}: heartbeat"
        try:
            while not self.done.wait(heartbeat_interval()):
                try:
                    retry_while_unavailable(self.beat, what=what, stop=self.done)
                except DATABASE_ERRORS:
                    pass  # the batch run ended while the database was away
                except Exception:
                    logger.exception("Batch %s: heartbeat failed", self.batch.pk)
        finally:
            connection.close()

    def beat(self) -> None:
        now = timezone.now()
        with self.running_lock:
            running = list(self.running)
        with self.writing:
            if running:
                Interaction.objects.filter(pk__in=running, status=InteractionStatus.RUNNING).update(
                    heartbeat_at=now
                )
            self.batch.touch()
        self.flush()

    def flush(self, *, force: bool = False) -> None:
        succeeded, failed = self.counter.take(force=force)
        if succeeded or failed:
            retry_while_unavailable(
                lambda: self.add_counts(succeeded, failed),
                what=f"Batch {self.batch.pk}: counters",
                stop=stopping,
            )

    def add_counts(self, succeeded: int, failed: int) -> None:
        with self.writing:
            self.batch.add_counts(succeeded=succeeded, failed=failed)

    # Conversations ---------------------------------------------------------------

    def claim(self, token: str) -> Claim | None:
        """Take the first free conversation: its head becomes running, ours. Those
        not started yet come first, then those of dead workers."""
        return retry_while_unavailable(
            lambda: self.take(token),
            what=f"Batch {self.batch.pk}: thread {token}",
            stop=stopping,
            landed=lambda: self.taken(token),
        )

    def take(self, token: str) -> Claim | None:
        now = timezone.now()
        stale = Interaction.objects.stale(before=now - stale_after()).filter(batch=self.batch)
        with self.writing, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(*self.heads_sql)
            head = cursor.fetchone()
            if head is None:
                cursor.execute(*_claim_sql(stale, "interaction_running"))
                head = cursor.fetchone()
            if head is None:
                return None
            pk, _, _, status, _ = head
            stamp = connection.ops.adapt_datetimefield_value(now)
            cursor.execute(_sql(START), [token, stamp, stamp, pk, status])
            claim = self.claimed(cursor, token, head)
        self.hold(pk)  # once committed: a claim that failed holds nothing
        return claim

    def taken(self, token: str) -> Claim | None:
        """The conversation this thread claimed if the claim was committed, although
        the database went away before answering: its head runs under our token."""
        with connection.cursor() as cursor:
            cursor.execute(_sql(HELD), [self.batch_id(), token])
            head = cursor.fetchone()
            if head is None:
                return None
            claim = self.claimed(cursor, token, head)
        self.hold(claim.head.pk)
        return claim

    def claimed(self, cursor, token: str, head: tuple) -> Claim:
        """The claim of a conversation whose ``head`` row now runs as ours."""
        pk, conversation, row_number, _, data = head
        cursor.execute(_sql(CONVERSATION), [self.batch_id(), conversation, row_number, row_number])
        rows = cursor.fetchall()
        rest, history = [], []
        for other, number, values, output in rows:
            if number > row_number:
                rest.append(Item(other, _json(values)))
            else:
                history.append({"input": _json(values), "output": _json(output)})
        return Claim(token=token, head=Item(pk, _json(data)), rest=rest, history=history)

    def batch_id(self):
        return Batch._meta.pk.get_db_prep_value(self.batch.pk, connection)

    def hold(self, pk: int) -> None:
        with self.running_lock:
            self.running.add(pk)

    def release(self, pk: int) -> None:
        with self.running_lock:
            self.running.discard(pk)

    def run_conversation(self, claim: Claim, processor: Processor) -> None:
        """Run the claimed rows in order until the last, a cancel, or a takeover."""
        item, rest = claim.head, claim.rest
        try:
            while item is not None:
                started = time.perf_counter()
                output, error = call(processor, item.input, claim.history)
                seconds = time.perf_counter() - started
                following = rest.pop(0) if rest and not stopping.is_set() else None
                try:
                    output, error = storable(output, error)
                    recorded, started = self.end_and_start(
                        claim.token, item, output, error, following
                    )
                except DATABASE_ERRORS:
                    raise  # stopping while the database is away: recovery takes the row
                except Exception as exc:
                    # The outcome cannot be stored (an answer the database refuses):
                    # the item fails with why, and the conversation goes on rather
                    # than leave the row running with no thread behind it.
                    logger.exception("Batch %s: item %s not stored", self.batch.pk, item.pk)
                    output, error = None, _not_stored(exc)
                    recorded, started = self.end_and_start(
                        claim.token, item, output, error, following
                    )
                self.release(item.pk)
                if not recorded:
                    return
                self.counter.add(ok=not error)
                metrics.observe_batch_item(
                    processor=self.batch.processor, ok=not error, seconds=seconds
                )
                if not error:
                    claim.history.append({"input": item.input, "output": output})
                if self.counter.succeeded + self.counter.failed >= FLUSH_ITEMS:
                    self.flush()
                item = following if started else None
        finally:
            self.release(item.pk if item else -1)

    def end_and_start(self, token, item: Item, output, error: str, following: Item | None):
        """Record ``item``'s outcome and start ``following``, in one transaction:
        ``(recorded, started)``. Through a database outage, until it gets through."""
        now = timezone.now()
        return retry_while_unavailable(
            lambda: self.record(token, item, output, error, following, now),
            what=f"Batch {self.batch.pk}: thread {token}",
            stop=stopping,
            landed=lambda: self.recorded(token, item, following),
        )

    def record(self, token, item: Item, output, error: str, following: Item | None, now):
        """One try of end_and_start. Plain SQL: building these two UPDATEs with the
        ORM took two thirds of the time of an echo item."""
        now = connection.ops.adapt_datetimefield_value(now)
        outcome = InteractionStatus.FAILED if error else InteractionStatus.SUCCEEDED
        output = _OUTPUT.get_db_prep_value(output, connection)
        with self.writing, transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_sql(END), [outcome, output, error, now, item.pk, token, "running"])
            recorded = cursor.rowcount == 1
            if not recorded or following is None:
                return recorded, False
            cursor.execute(_sql(START), [token, now, now, following.pk, "pending"])
            started = cursor.rowcount == 1
        if started:
            self.hold(following.pk)  # once committed
        return True, started

    def recorded(self, token, item: Item, following: Item | None):
        """``(True, started)`` if ``item``'s end was committed although the database
        went away before answering; None if it was not (or not by us: taken over)."""
        pks = [item.pk] if following is None else [item.pk, following.pk]
        rows = {
            pk: (status, owner)
            for pk, status, owner in Interaction.objects.filter(pk__in=pks).values_list(
                "pk", "status", "claimed_by"
            )
        }
        status, owner = rows.get(item.pk, (None, None))
        if owner != token or status == InteractionStatus.RUNNING:
            return None
        started = following is not None and rows[following.pk] == (InteractionStatus.RUNNING, token)
        if started:
            self.hold(following.pk)
        return True, started


def _claim_sql(queryset, index: str) -> tuple[str, list]:
    """SQL and parameters of a claim query: its first row, locked on PostgreSQL
    (skipping rows other claims hold). On SQLite its partial ``index`` is named:
    without ANALYZE statistics the planner walks every finished row of the batch
    instead, and a claim took 9 ms at 10,000 rows."""
    queryset = queryset.select_for_update(skip_locked=True).values_list(
        "pk", "conversation", "row_number", "status", "input"
    )[:1]
    sql, params = queryset.query.sql_with_params()
    if connection.vendor == "sqlite":
        table = connection.ops.quote_name(Interaction._meta.db_table)
        sql = sql.replace(f"FROM {table} WHERE", f'FROM {table} INDEXED BY "{index}" WHERE', 1)
    return sql, list(params)


def _json(value):
    return _OUTPUT.from_db_value(value, None, connection)


_OUTPUT = Interaction._meta.get_field("output")
END = (
    "UPDATE {table} SET status = %s, output = %s, error = %s, finished_at = %s "
    "WHERE id = %s AND claimed_by = %s AND status = %s"
)
START = (
    "UPDATE {table} SET status = 'running', claimed_by = %s, heartbeat_at = %s, "
    "started_at = %s, attempts = attempts + 1 WHERE id = %s AND status = %s"
)
# The head of the conversation a thread's claim token holds.
HELD = (
    "SELECT id, conversation, row_number, status, input FROM {table} "
    "WHERE batch_id = %s AND claimed_by = %s AND status = 'running'"
)
# A claimed conversation's pending rows after its head, and the exchanges before it
# that succeeded (its history when the conversation is resumed).
CONVERSATION = (
    "SELECT id, row_number, input, output FROM {table} WHERE batch_id = %s "
    "AND conversation = %s AND ((row_number > %s AND status = 'pending') "
    "OR (row_number < %s AND status = 'succeeded')) ORDER BY row_number"
)


def _sql(template: str) -> str:
    return template.format(table=connection.ops.quote_name(Interaction._meta.db_table))


def storable(output: dict | None, error: str) -> tuple[dict | None, str]:
    """The outcome without NUL characters, which PostgreSQL stores neither in text nor
    in JSON (as \\u0000), so that a model answering one does not fail its item."""
    error = error.replace("\x00", "")
    if output is not None and "\\u0000" in json.dumps(output, default=str):
        output = _without_nul(output)
    return output, error


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(item) for item in value]
    return value


def _not_stored(exc: Exception) -> str:
    detail = " ".join(str(exc).split())[:200].replace("\x00", "")
    return (
        f"The processor's answer could not be stored ({type(exc).__name__}"
        f"{': ' + detail if detail else ''}), so the item failed."
    )


def call(processor: Processor, input: dict, history: list[dict]) -> tuple[dict | None, str]:
    """``(output, "")`` or ``(None, error)``: one item's failure never stops the batch."""
    try:
        output = processor.process(input, history)
    except ProcessorError as exc:
        return None, str(exc) or "The processor failed."
    except Exception as exc:
        logger.exception("Processor %s failed unexpectedly", type(processor).__name__)
        return None, f"The processor failed unexpectedly ({type(exc).__name__})."
    if not isinstance(output, dict) or not isinstance(output.get("text"), str):
        return None, "The processor answered without a text."
    return output, ""


# Ending a batch ------------------------------------------------------------------


def batch_finish(*, batch: Batch) -> bool:
    """Once no row is unfinished: exact counters and the final status."""
    with transaction.atomic():
        counts = batch.interactions.counts()
        if counts.get(InteractionStatus.PENDING) or counts.get(InteractionStatus.RUNNING):
            return False
        succeeded = counts.get(InteractionStatus.SUCCEEDED, 0)
        failed = counts.get(InteractionStatus.FAILED, 0)
        cancelled = counts.get(InteractionStatus.CANCELLED, 0)
        now = timezone.now()
        fields = dict(
            processed_items=succeeded,
            failed_items=failed,
            cancelled_items=cancelled,
            updated_at=now,
        )
        final = (
            BatchStatus.PROCESSED
            if not failed
            else BatchStatus.FAILED
            if not succeeded
            else BatchStatus.COMPLETED_WITH_ERRORS
        )
        Batch.objects.filter(pk=batch.pk, status__in=ACTIVE_BATCH).update(
            status=final, finished_at=now, **fields
        )
        Batch.objects.filter(pk=batch.pk, status=BatchStatus.CANCELLED).update(**fields)
    return True


def batch_fail(*, batch: Batch, error: str) -> None:
    """The processor cannot be used (misconfigured): every waiting row fails with why."""
    now = timezone.now()
    with transaction.atomic():
        batch.interactions.filter(status=InteractionStatus.PENDING).update(
            status=InteractionStatus.FAILED, error=error, finished_at=now
        )
        Batch.objects.filter(pk=batch.pk).update(error=error, updated_at=now)


# Recovering from dead workers ------------------------------------------------------


def batches_recover(*, stale_after_seconds: float | None = None) -> list[str]:
    """Re-queue the active batches whose workers died; fail the tasks they left.

    django-tasks-db leaves the task of a SIGKILLed worker RUNNING forever. A live
    task bumps its batch's heartbeat every second (whatever the batch's status), so
    a batch whose heartbeat is older than BATCH_STALE_AFTER has no live task:

    1. its tasks still RUNNING (and started before then) are marked FAILED with
       WorkerLost;
    2. if it is still active and has no task waiting in the queue, it is won with a
       conditional UPDATE of its heartbeat (two workers sweeping at once recover it
       once) and queued again in the same transaction. The new task claims the dead
       worker's running rows (their own heartbeats are stale too) and every pending
       row;
    3. if it was cancelled, nothing is queued (a cancelled batch never runs a row
       again): the rows its dead worker left running fail with why, and batch_finish
       writes exact counters.
    """
    seconds = settings.BATCH_STALE_AFTER if stale_after_seconds is None else stale_after_seconds
    before = timezone.now() - timedelta(seconds=seconds)
    _fail_lost_tasks(before=before, seconds=seconds)
    _finish_lost_cancels(before=before)
    recovered = []
    for pk, beat in Batch.objects.orphaned(before=before).values_list("pk", "heartbeat_at"):
        if _batch_tasks(pk).filter(status="READY").exists():
            continue  # waiting for a free worker, not lost
        with transaction.atomic():
            if Batch.objects.filter(pk=pk, heartbeat_at=beat).update(heartbeat_at=timezone.now()):
                _requeue(pk)
                recovered.append(str(pk))
    return recovered


WORKER_LOST = (
    "The worker processing this item stopped (was it killed?) after its batch was "
    "cancelled, so it has no answer."
)


def _finish_lost_cancels(*, before) -> None:
    """Step 3 of batches_recover. The running rows change only while their heartbeat
    is still stale, so a worker that was only slow keeps its row."""
    for batch in Batch.objects.cancelled_unfinished(before=before):
        with transaction.atomic():
            lost = batch.interactions.filter(
                status=InteractionStatus.RUNNING, heartbeat_at__lt=before
            ).update(status=InteractionStatus.FAILED, error=WORKER_LOST, finished_at=timezone.now())
            batch_finish(batch=batch)
        logger.warning("Cancelled batch %s lost its worker; %s running rows failed", batch.pk, lost)


def _batch_tasks(batch_id=None):
    from django_tasks_db.models import DBTaskResult

    from batches.tasks import process_batch

    tasks = DBTaskResult.objects.filter(task_path=process_batch.module_path)
    return tasks if batch_id is None else tasks.filter(args_kwargs__kwargs__batch_id=str(batch_id))


def _fail_lost_tasks(*, before, seconds: float) -> None:
    running = _batch_tasks().filter(status="RUNNING", started_at__lt=before)
    for task_id, args in running.values_list("pk", "args_kwargs"):
        batch_id = args.get("kwargs", {}).get("batch_id")
        if Batch.objects.filter(pk=batch_id, heartbeat_at__gte=before).exists():
            continue  # some task on this batch is alive; maybe this one
        running.filter(pk=task_id).update(
            status="FAILED",
            finished_at=timezone.now(),
            exception_class_path=f"{WorkerLost.__module__}.{WorkerLost.__qualname__}",
            traceback=(
                f"WorkerLost: no heartbeat on batch {batch_id} for {seconds:g} s: the worker "
                "running this task died (killed?); the batch is recovered by other workers.\n"
            ),
        )
        logger.warning("Task %s on batch %s lost its worker", task_id, batch_id)


def _requeue(batch_id) -> None:
    from batches.tasks import enqueue_batch

    task_id = enqueue_batch(batch_id)
    logger.warning("Batch %s had no live worker; queued again as task %s", batch_id, task_id)
