"""Recovering what dead workers left behind.

django-tasks-db leaves the task of a SIGKILLed worker RUNNING forever. A live task
bumps the heartbeat of the batch it was queued for and of every batch it runs rows
of, every second, so an active batch whose heartbeat is older than BATCH_STALE_AFTER
has no live task on it.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from batches.engine.finishing import batch_finish
from batches.failures import group_key
from batches.models import Batch, InteractionStatus
from batches.processors import lanes
from batches.tasks import enqueue_batch, process_batch

logger = logging.getLogger("batches.processing")

WORKER_LOST = (
    "The worker processing this item stopped (was it killed?) after its batch was "
    "cancelled, so it has no answer."
)


class WorkerLost(Exception):
    """Recorded on a task whose worker stopped sending heartbeats."""


def batches_recover(*, stale_after_seconds: float | None = None) -> list[str]:
    """Re-queue the active batches whose workers died; fail the tasks they left.

    1. tasks still RUNNING (and started before the stale limit) whose batch has no
       fresh heartbeat are marked FAILED with WorkerLost;
    2. an active batch with a stale heartbeat and no task waiting in the queue is won
       with a conditional UPDATE of its heartbeat (two workers sweeping at once
       recover it once) and queued again in the same transaction. The new task claims
       the dead worker's running rows (their own heartbeats are stale too) and every
       pending row;
    3. a cancelled batch is never queued (it never runs a row again): the rows its
       dead worker left running fail with why, and batch_finish writes exact counters;
    4. the lanes of batches with limits of their own that nothing waits on are
       deleted (a finished batch leaves one).
    """
    seconds = settings.BATCH_STALE_AFTER if stale_after_seconds is None else stale_after_seconds
    before = timezone.now() - timedelta(seconds=seconds)
    _fail_lost_tasks(before=before, seconds=seconds)
    _finish_lost_cancels(before=before)
    recovered = []
    for pk, beat in Batch.objects.orphaned(before=before).values_list("pk", "heartbeat_at"):
        if batch_tasks(pk).ready().exists():
            continue  # waiting for a free worker, not lost
        with transaction.atomic():
            if Batch.objects.filter(pk=pk, heartbeat_at=beat).update(heartbeat_at=timezone.now()):
                task_id = enqueue_batch(pk)
                logger.warning("Batch %s had no live worker; queued again as task %s", pk, task_id)
                recovered.append(str(pk))
    lanes.forget_idle()
    return recovered


def batch_tasks(batch_id=None):
    """The batch tasks of django-tasks-db's table, or those queued for one batch."""
    tasks = DBTaskResult.objects.filter(task_path=process_batch.module_path)
    return tasks if batch_id is None else tasks.filter(args_kwargs__kwargs__batch_id=str(batch_id))


def _finish_lost_cancels(*, before) -> None:
    """Step 3 of batches_recover. The running rows change only while their heartbeat
    is still stale, so a worker that was only slow keeps its row."""
    for batch in Batch.objects.cancelled_unfinished(before=before):
        with transaction.atomic():
            lost = batch.interactions.filter(
                status=InteractionStatus.RUNNING, heartbeat_at__lt=before
            ).update(
                status=InteractionStatus.FAILED,
                error=WORKER_LOST,
                error_group=group_key(WORKER_LOST),
                finished_at=timezone.now(),
            )
            batch_finish(batch=batch)
        logger.warning("Cancelled batch %s lost its worker; %s running rows failed", batch.pk, lost)


def _fail_lost_tasks(*, before, seconds: float) -> None:
    running = batch_tasks().running().filter(started_at__lt=before)
    for task_id, args in running.values_list("pk", "args_kwargs"):
        batch_id = args.get("kwargs", {}).get("batch_id")
        if Batch.objects.filter(pk=batch_id, heartbeat_at__gte=before).exists():
            continue  # some task on this batch is alive; maybe this one
        with transaction.atomic():
            # Locked and read again: a task that finished a moment ago keeps its outcome.
            task = running.filter(pk=task_id).get_locked()
            if task is None:
                continue
            task.set_failed(
                WorkerLost(
                    f"no heartbeat on batch {batch_id} for {seconds:g} s: the worker running "
                    "this task died (killed?); the batch is recovered by other workers"
                )
            )
        logger.warning("Task %s on batch %s lost its worker", task_id, batch_id)
