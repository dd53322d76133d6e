"""Reads for batches: what the API, the admin and export_batch show."""

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Max, Min, Sum
from django.utils import timezone

from batches.engine import sql
from batches.failures import normalised
from batches.models import (
    FAILED_SQL,
    Batch,
    BatchStatus,
    Interaction,
    InteractionStatus,
    Quota,
    Worker,
)
from batches.processors.base import USAGE_FIELDS, reports_usage
from batches.processors.lanes import Lane


def batches_for(user):
    return Batch.objects.visible_to(user).select_related("owner")


RAN = (InteractionStatus.SUCCEEDED, InteractionStatus.FAILED)
WINDOW = dt.timedelta(minutes=1)


def batch_pace(batch: Batch, *, now: dt.datetime | None = None) -> dict:
    """How fast a batch goes: items that ran per minute of its processing (over all
    its attempts) and over the last minute, the time it has been processing, and
    while it runs an estimate of the time left (from the last minute's rate, else
    the whole run's). A retried item counts once, as it ran last."""
    now = now or timezone.now()
    if batch.started_at is None:
        return {"elapsed_seconds": None, "items_per_minute": None,
                "items_per_minute_last_minute": None, "eta_seconds": None}  # fmt: skip
    # Over the time it was processing: a retry's wait is not counted.
    elapsed = max(batch.processing_seconds(now=now), 0.001)
    ran = batch.processed_items + batch.failed_items
    overall = ran * 60 / elapsed
    recent = None
    if batch.status == BatchStatus.PROCESSING:
        window = min(WINDOW.total_seconds(), elapsed)
        done = batch.interactions.filter(status__in=RAN, finished_at__gte=now - WINDOW).count()
        recent = done * 60 / window
    remaining = batch.total_items - ran - batch.cancelled_items
    rate = recent or overall
    eta = remaining * 60 / rate if batch.status == BatchStatus.PROCESSING and rate else None
    return {
        "elapsed_seconds": round(elapsed, 1),
        "items_per_minute": round(overall, 1),
        "items_per_minute_last_minute": None if recent is None else round(recent, 1),
        "eta_seconds": None if eta is None else round(eta),
    }


class Waiting:
    """Why a batch is waiting (``waiting_for``'s ``reason``)."""

    WORKER = "worker"
    CONCURRENCY = "concurrency"
    RATE_LIMIT = "rate_limit"
    QUOTA = "quota"


def batch_waiting_for(batch: Batch, *, now: dt.datetime | None = None) -> dict | None:
    """Why an active batch does not start more of its conversations now, or None when
    it is not waiting (ended, every conversation that may start runs, or a live
    worker has a thread free to start the next):

    - ``worker``: no worker has sent a heartbeat within BATCH_STALE_AFTER, or every
      thread of the live workers (their heartbeats say how many) runs a conversation;
    - ``rate_limit``: its processor is paused or limited until ``until``;
    - ``quota``: as many of its owner's items run as their quota allows;
    - ``concurrency``: as many of its conversations run as its concurrency allows.
    """
    if not batch.is_active or not Interaction.objects.heads(batch).exists():
        return None
    now = now or timezone.now()
    since = now - dt.timedelta(seconds=settings.BATCH_STALE_AFTER)
    if not Worker.objects.live(since=since).exists():
        return _waiting(
            Waiting.WORKER,
            "No worker is running: none has sent a heartbeat in the last "
            f"{settings.BATCH_STALE_AFTER} s (BATCH_STALE_AFTER).",
        )
    if (until := rate_limited_until(batch)) is not None:
        return _waiting(
            Waiting.RATE_LIMIT,
            f"The {batch.processor} processor's rate limit: its next call waits until "
            f"{until.isoformat()}.",
            until=until,
        )
    quota = Quota.of(batch.owner_id).running_items
    if quota is not None:
        theirs = Batch.objects.filter(owner_id=batch.owner_id).values("pk")
        owner_running = Interaction.objects.filter(batch_id__in=theirs).running(since=since)
        if (count := owner_running.count()) >= quota:
            return _waiting(
                Waiting.QUOTA,
                f"Its owner's quota: {count} of their items run, as many as their quota "
                f"allows ({quota}); the next starts when one ends.",
            )
    running = batch.interactions.running(since=since).count()
    if running >= batch.cap:
        return _waiting(
            Waiting.CONCURRENCY,
            f"{running} of its conversations run, as many as its concurrency ({batch.cap}) "
            "allows; the next starts when one ends.",
        )
    threads = Worker.objects.live(since=since).threads()
    if Interaction.objects.running(since=since).count() < threads:
        return None  # a free thread takes its next conversation up at once
    return _waiting(
        Waiting.WORKER,
        f"Waiting for a free worker thread: the live workers run as many conversations as "
        f"they have threads ({threads}), {running} of them its own (its concurrency allows "
        f"{batch.cap}).",
    )


def rate_limited_until(batch: Batch) -> dt.datetime | None:
    """Until when the batch's lane (batches.processors.lanes) holds its next call back: a 429's
    pause, or the budget of its processor or its own already spent; None when a call
    could start at once."""
    return Lane(batch.processor, batch.options or {}, batch.pk, batch.owner_id).limited_until()


def _waiting(reason: str, message: str, *, until: dt.datetime | None = None) -> dict:
    return {"reason": reason, "message": message, "until": until}


MILLION = Decimal(1_000_000)
COST_PLACES = Decimal("0.000001")


def batch_usage(batch: Batch) -> dict:
    """The tokens the batch's items used, summed, and their estimated cost in US
    dollars when BATCH_MODEL_PRICES prices the batch's model (else None)."""
    totals = dict.fromkeys(USAGE_FIELDS, 0)
    if reports_usage(batch.processor):  # others have no tokens to sum
        summed = batch.interactions.aggregate(**{name: Sum(name) for name in USAGE_FIELDS})
        totals = {name: summed[name] or 0 for name in USAGE_FIELDS}
    model = batch_model(batch)
    return {**totals, "model": model, "estimated_cost": estimated_cost(model, totals)}


def batch_model(batch: Batch) -> str | None:
    """The model the batch asks its processor for (openai: options.model, else
    OPENAI_MODEL); None for processors without one."""
    default = settings.OPENAI_MODEL if batch.processor == "openai" else None
    return (batch.options or {}).get("model") or default


def estimated_cost(model: str | None, usage: dict) -> Decimal | None:
    prices = settings.BATCH_MODEL_PRICES.get(model) if model else None
    if prices is None:
        return None
    cost = Decimal(usage["prompt_tokens"]) * Decimal(prices.get("prompt_per_million", 0))
    cost += Decimal(usage["completion_tokens"]) * Decimal(prices.get("completion_per_million", 0))
    return (cost / MILLION).quantize(COST_PLACES)


def status_counts(batch: Batch) -> dict[str, int]:
    """How many of the batch's items are in each status, every status named."""
    counts = dict(batch.interactions.order_by().values_list("status").annotate(n=Count("pk")))
    return {status: counts.get(status, 0) for status in InteractionStatus.values}


def with_item_counts(batch: Batch) -> Batch:
    """``batch`` with its items' counts per status in ``item_counts``, from its own
    counters (exact once it has ended; written by its workers every second while it
    runs) and its running items: every figure of a batch's page comes from one such
    answer, so none can disagree with another, and a 100,000-item batch reads no
    item it does not have to."""
    running = 0
    if not batch.is_over:
        running = sql.running_counts(batch_id=batch.pk).get(batch.pk, 0)
    ended = batch.processed_items + batch.failed_items + batch.cancelled_items
    batch.item_counts = {
        InteractionStatus.PENDING: max(batch.total_items - ended - running, 0),
        InteractionStatus.RUNNING: running,
        InteractionStatus.SUCCEEDED: batch.processed_items,
        InteractionStatus.FAILED: batch.failed_items,
        InteractionStatus.CANCELLED: batch.cancelled_items,
    }
    return batch


FAILURE_GROUPS_SHOWN = 50


def failure_groups(batch: Batch) -> list[dict]:
    """The batch's failed items grouped by cause (batches.failures), largest first:
    each group's key, its error with numbers, ids and quoted values folded, how many
    items, one of them, and when the first and the last failed."""
    rows = (
        batch.interactions.filter(FAILED_SQL)  # through the partial index of failed items
        .order_by()
        .values("error_group")
        .annotate(
            count=Count("pk"),
            example=Min("pk"),
            first_seen=Min("finished_at"),
            last_seen=Max("finished_at"),
        )
        .order_by("-count", "error_group")[:FAILURE_GROUPS_SHOWN]
    )
    groups = list(rows)
    errors = dict(
        Interaction.objects.filter(pk__in=[g["example"] for g in groups]).values_list("pk", "error")
    )
    return [
        {
            "key": group["error_group"],
            "error": normalised(errors.get(group["example"], "")),
            "count": group["count"],
            "example_item": group["example"],
            "first_seen": group["first_seen"],
            "last_seen": group["last_seen"],
        }
        for group in groups
    ]


def batch_attempts(batch: Batch) -> list[dict]:
    """The retries of the batch's failed items, oldest first."""
    rows = batch.attempts.order_by("at").values_list("at", "requeued", "group", "by__username")
    return [
        {"at": at, "requeued": requeued, "group": group, "by": by}
        for at, requeued, group, by in rows
    ]
