"""The background task of a batch, run by ``python manage.py db_worker``."""

import logging
import time

from django_tasks import task
from structlog.contextvars import bound_contextvars

from batches.engine.worker import batch_process, helper_wanted

logger = logging.getLogger("batches.engine.worker")


@task(takes_context=True)
def process_batch(context, batch_id: str) -> dict:
    """Wake a worker: it works on every active batch, fairly, until nothing is left
    for it to claim; ``batch_id`` is the batch the task was queued for."""
    task_id = str(context.task_result.id)
    # Every line this task writes, from any of its threads, names the batch and task.
    with bound_contextvars(batch_id=batch_id, task_id=task_id):
        logger.info("batch %s: task started", batch_id)
        started = time.perf_counter()
        if helper_wanted(batch_id):
            enqueue_batch(batch_id)
        result = batch_process(batch_id=batch_id, worker_id=task_id)
        if result.pop("handed_over"):
            enqueue_batch(batch_id)
            logger.warning("batch %s: worker stopping; queued again", batch_id)
        logger.info(
            "batch %s: task ended, %s",
            batch_id,
            result["status"],
            extra={**result, "duration_ms": round((time.perf_counter() - started) * 1000, 1)},
        )
    return result


def enqueue_batch(batch_id) -> str:
    """Queue a task for the batch; returns the task result id."""
    return str(process_batch.enqueue(batch_id=str(batch_id)).id)
