"""A worker run: one task's threads, each taking its next conversation from all
active batches (batches.engine.claims), running it (batches.engine.conversations) and taking the
next, until nothing is left to claim anywhere.

A task is queued per upload, retry-failed and recovery; it names a batch, but only
to wake a worker: its run works on whatever batch is due next, so no task pins a
worker to one batch while others wait. A heartbeat thread keeps the run's running
rows, the batches they belong to and the task's own batch fresh, and writes the
counters (batches.engine.counters). A batch with nothing left is finished at once.

The database going away is waited out (batchsvc.ops.outages): each step that touches it
(a claim, an item's end, a heartbeat, the counters, the run as a whole) is tried
again until the database answers. An item is never failed because the database was
away.
"""

import contextvars
import logging
import threading
import time
import uuid

from django.db import connection

from batches.engine.claims import WAIT, Candidate, Claims, Drained, Unchecked
from batches.engine.conversations import Conversation
from batches.engine.counters import Progress, stopping
from batches.engine.finishing import batch_fail, batch_finish
from batches.models import ACTIVE_BATCH, Batch, BatchStatus, Interaction, worker_threads
from batches.processors.base import get_processor
from batchsvc.ops.outages import retry_while_unavailable

logger = logging.getLogger("batches.processing")

# How long a thread with nothing to start waits to look again (every batch at its
# concurrency cap, or nothing left but what the run's other threads are running).
WAIT_SECONDS = 0.05
# How often a run looks whether a batch it ran rows of was cancelled meanwhile: it is
# cancelled for good (final counts, finished_at) once none of its rows runs.
CANCEL_LOOK_SECONDS = 0.5


def helper_wanted(batch_id) -> bool:
    """Whether the batch has more conversations than one run has threads: its task
    queues another, which a free worker picks up (and which finds nothing to do if
    none is free until this run ends)."""
    threads = worker_threads()
    heads = Interaction.objects.heads(Batch(pk=batch_id))
    return retry_while_unavailable(
        heads[threads : threads + 1].exists, what=f"Batch {batch_id}", stop=stopping
    )


def batch_process(*, batch_id, worker_id: str | None = None) -> dict:
    """Run the worker until nothing is left to claim; the state of ``batch_id`` after,
    with ``handed_over`` true when the run stopped early with work left (the caller
    queues a task again). A database outage on the way is waited out and the work
    taken up again from the database's state, as a restarted worker would."""
    worker_id = worker_id or uuid.uuid4().hex
    return retry_while_unavailable(
        lambda: _batch_process(batch_id, worker_id),
        what=f"Batch {batch_id}",
        stop=stopping,
    )


def _batch_process(batch_id, worker_id: str) -> dict:
    batch = Batch.objects.filter(pk=batch_id).first()
    if batch is None:
        return {"batch_id": str(batch_id), "status": "missing", "handed_over": False}
    handed_over = WorkerRun(batch, worker_id).run()
    batch_finish(batch=batch)
    batch.refresh_from_db(fields=["status", "processed_items", "failed_items"])
    return {
        "batch_id": str(batch.pk),
        "status": batch.status,
        "processed_items": batch.processed_items,
        "failed_items": batch.failed_items,
        "handed_over": handed_over,
    }


class WorkerRun:
    """One task run's threads, on every active batch."""

    def __init__(self, batch: Batch, worker_id: str):
        self.batch = batch
        self.worker_id = worker_id
        self.threads = worker_threads()
        self.progress = Progress(announced=batch.pk)
        self.claims = Claims(self.progress)
        self.touched: set = set()
        self.busy = 0
        self.busy_lock = threading.Lock()
        self.looking = threading.Lock()
        self.next_look = 0.0
        self.next_cancel_look = 0.0

    def run(self) -> bool:
        """Work until nothing is left; whether it stopped early with work left."""
        heartbeat = _thread(self.progress.heartbeat, "batch-heartbeat")
        heartbeat.start()
        threads = [_thread(self.work, f"batch-{n}", n) for n in range(self.threads)]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            self.progress.done.set()
            heartbeat.join()
            self.progress.close()
        self.progress.flush(force=True)
        for pk in self.touched:
            batch_finish(batch=Batch(pk=pk))
        return stopping.is_set() and self.work_left()

    def work_left(self) -> bool:
        return Interaction.objects.pending().filter(batch__status__in=ACTIVE_BATCH).exists()

    def work(self, number: int) -> None:
        token = f"{self.worker_id}/{number}"
        processors = {}
        try:
            idle = False
            while not stopping.is_set():
                claim = self.look(token) if idle else self.claim(token)
                if claim is None and not self.working():
                    break
                # A thread stays while the run works: a batch uploaded meanwhile finds
                # it free, rather than waiting for the run to end.
                idle = claim is None or claim == WAIT
                if not idle:
                    self.run_claim(claim, processors)
                    self.finish_cancelled()
        except Exception:
            logger.exception("Worker thread %s stopped", token)
        finally:
            for processor in processors.values():
                processor.close()
            connection.close()

    def look(self, token: str):
        """An idle thread's claim. One idle thread looks at a time, and while looks
        find nothing to start, once every WAIT_SECONDS for the whole run: idle threads
        each trying the database slow the busy ones down."""
        # A thread that just lost a race for a batch's last free slot waits too, or
        # it and the winner would take the slot from each other at every item.
        if stopping.wait(WAIT_SECONDS):
            return WAIT
        with self.looking:
            delay = self.next_look - time.monotonic()
            if delay > 0 and stopping.wait(delay):
                return WAIT
            claim = self.claim(token)
            # Found work, or the run is ending: the next idle thread looks at once.
            waiting = claim == WAIT or (claim is None and self.working())
            self.next_look = time.monotonic() + (WAIT_SECONDS if waiting else 0.0)
        return claim

    def run_claim(self, claim, processors: dict) -> None:
        with self.busy_lock:
            self.busy += 1
            self.touched.add(claim.batch_id)
        try:
            if claim.batch_id not in processors:
                processors[claim.batch_id] = get_processor(claim.processor, claim.options)
            Conversation(claim, self.progress).run(processors[claim.batch_id])
        finally:
            with self.busy_lock:
                self.busy -= 1

    def finish_cancelled(self) -> None:
        """Cancel for good the cancelling batches this run ran rows of whose rows have
        all ended; looked at once every CANCEL_LOOK_SECONDS for the whole run."""
        with self.busy_lock:
            if time.monotonic() < self.next_cancel_look:
                return
            self.next_cancel_look = time.monotonic() + CANCEL_LOOK_SECONDS
            touched = list(self.touched)
        cancelling = Batch.objects.filter(pk__in=touched, status=BatchStatus.CANCELLING)
        for pk in retry_while_unavailable(
            lambda: list(cancelling.values_list("pk", flat=True)),
            what="Cancelled batches",
            stop=stopping,
        ):
            self.finish(pk)

    def working(self) -> bool:
        """Whether some thread of this run is running a conversation."""
        with self.busy_lock:
            return self.busy > 0

    def claim(self, token: str):
        """The claims' answer once the batches it names are checked or finished: a
        conversation, WAIT, or None (nothing to do)."""
        finished = set()
        while True:
            decision = self.claims.claim(token, passed=finished)
            if isinstance(decision, Unchecked):
                self.claims.checked(decision.candidate.pk, self.check(decision.candidate))
            elif isinstance(decision, Drained):
                self.finish(decision.batch_id)
                finished.add(decision.batch_id)
            else:
                return decision

    def check(self, candidate: Candidate) -> bool:
        """Whether the batch's processor can be used; a batch whose processor cannot
        fails as a whole. A queued batch starts processing."""
        batch = Batch(pk=candidate.pk, status=candidate.status)
        if candidate.status == BatchStatus.QUEUED:
            batch.mark_processing()
        try:
            get_processor(candidate.processor, candidate.options).close()
        except ValueError as exc:
            batch_fail(batch=batch, error=str(exc))
            batch_finish(batch=batch)
            return False
        return True

    def finish(self, batch_id) -> None:
        """Nothing left to claim in the batch and no row running: finish it now."""
        self.progress.flush(force=True, batch_id=batch_id)
        batch_finish(batch=Batch(pk=batch_id))


def _thread(target, name: str, *args) -> threading.Thread:
    # Each thread runs in a copy of this context, so its log lines name the task.
    return threading.Thread(
        target=contextvars.copy_context().run, args=(target, *args), name=name, daemon=True
    )
