"""Reads of the OpenAI-compatible Batch API: whose files and batches, and a batch's
state in OpenAI's words.

OpenAI's statuses from ours: queued is ``validating`` (the lines were checked when it
was created); processing is ``in_progress``, ``finalizing`` once every line has ended;
processed and completed_with_errors are ``completed``; failed is ``completed`` too when
its lines were sent (every one of them answered with an error), ``failed`` when none
could be (the processor is not configured); a batch that ended with lines refused for
its window's end is ``expired``; a cancelled batch is ``cancelling`` while lines started
before the cancel still run, then ``cancelled``.
"""

from dataclasses import dataclass

from batches.models import Batch, BatchStatus, InteractionStatus
from batches.processors.passthrough import EXPIRED, unsent_prefix
from batches.selectors import batch_usage
from openai_api.models import File, OpenAIBatch

FINAL = ("completed", "failed", "expired", "cancelled")
# Ours that have not ended; a cancel ends once the lines running at that moment have.
UNENDED = (BatchStatus.QUEUED, BatchStatus.PROCESSING, "cancelling")
CANCELLED = ("cancelling", "cancelled")


def files_for(user):
    return File.objects.visible_to(user).unexpired()


def batches_for(user):
    return Batch.objects.visible_to(user).filter(openai__isnull=False).select_related("openai")


@dataclass
class State:
    status: str
    usage: dict
    counts: dict
    """Lines in the output file (completed) and in the error file (failed)."""
    settled: str | None
    """Once the batch has ended for good, which end (its result files are written for
    it); None while it runs."""


def batch_state(batch: Batch) -> State:
    """The batch's OpenAI status, token usage and request counts. Once the batch has
    ended they are counted exactly and kept on its OpenAIBatch row (a cache: the end of
    a batch does not change); while it runs, its counters say how far it is (they
    trail its lines by a second at most)."""
    link: OpenAIBatch = batch.openai
    ended = ended_key(batch)
    cached = link.settled or {}
    if ended is not None and cached.get("for") == ended:
        return State(cached["status"], cached["usage"], cached["counts"], ended)
    status = openai_status(batch)
    usage = {key: value for key, value in batch_usage(batch).items() if key.endswith("tokens")}
    if status not in FINAL:
        counts = {
            "completed": batch.processed_items,
            "failed": batch.failed_items + batch.cancelled_items,
        }
        return State(status, usage, counts, None)
    counts = result_counts(batch)
    link.settled = {"for": ended, "status": status, "usage": usage, "counts": counts}
    OpenAIBatch.objects.filter(pk=link.pk).update(settled=link.settled)
    return State(status, usage, counts, ended)


def result_counts(batch: Batch) -> dict:
    counts = batch.interactions.counts()
    return {
        "completed": counts.get(InteractionStatus.SUCCEEDED, 0),
        "failed": counts.get(InteractionStatus.FAILED, 0)
        + counts.get(InteractionStatus.CANCELLED, 0),
    }


def ended_key(batch: Batch) -> str | None:
    """Which end the batch reached, for a batch that may have ended for good."""
    if batch.status in UNENDED or batch.finished_at is None:
        return None
    return f"{batch.status}@{batch.finished_at.isoformat()}"


def openai_status(batch: Batch) -> str:
    if batch.status == BatchStatus.QUEUED:
        return "validating"
    if batch.status == BatchStatus.PROCESSING:
        ended = batch.processed_items + batch.failed_items + batch.cancelled_items
        return "finalizing" if ended >= batch.total_items else "in_progress"
    if batch.status in CANCELLED:
        running = batch.interactions.filter(status=InteractionStatus.RUNNING).exists()
        return "cancelling" if running or batch.status == "cancelling" else "cancelled"
    if expired(batch):
        return "expired"
    if batch.status == BatchStatus.FAILED and never_sent(batch):
        return "failed"
    return "completed"


def expired(batch: Batch) -> bool:
    """Whether lines were refused for the window's end (only a batch that ended after
    it can have such lines)."""
    if batch.finished_at is None or batch.finished_at < batch.openai.expires_at:
        return False
    failed = batch.interactions.filter(status=InteractionStatus.FAILED)
    return failed.filter(error__startswith=unsent_prefix(EXPIRED)).exists()


def never_sent(batch: Batch) -> bool:
    """A batch failed as a whole: its processor could not be used, and its rows
    failed without a worker starting them (batches.engine.finishing.batch_fail)."""
    return batch.interactions.filter(status=InteractionStatus.FAILED, attempts=0).exists()
