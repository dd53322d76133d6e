"""The background task of a batch, run by ``python manage.py db_worker``."""

from django_tasks import task


@task(takes_context=True)
def process_batch(context, batch_id: str) -> dict:
    """Work on one batch until no conversation is left for this worker to claim."""
    from batches.processing import batch_process

    return batch_process(batch_id=batch_id, worker_id=str(context.task_result.id))


def enqueue_batch(batch_id) -> str:
    """Queue a task for the batch; returns the task result id."""
    return str(process_batch.enqueue(batch_id=str(batch_id)).id)
