"""What operators see of the batch workers: a readiness check and the gauges computed
from the database at each scrape of /metrics."""

import dataclasses
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Max
from django.utils import timezone
from health_check.exceptions import ServiceUnavailable
from prometheus_client.core import GaugeMetricFamily

from batches.models import PENDING_SQL, Batch, BatchStatus, Interaction, Worker
from batchsvc.ops.health import RequestThreadCheck
from batchsvc.ops.metrics import gauge


def live_since():
    return timezone.now() - timedelta(seconds=settings.BATCH_STALE_AFTER)


@dataclasses.dataclass
class Workers(RequestThreadCheck):
    """While batches wait or run, some worker has sent a heartbeat within
    BATCH_STALE_AFTER; with nothing to do, no worker is needed to be ready."""

    def check(self):
        try:
            waiting = Batch.objects.active().exists()
            live = Worker.objects.live(since=live_since()).exists()
        except DatabaseError as exc:
            raise ServiceUnavailable("the database cannot be read") from exc
        if waiting and not live:
            raise ServiceUnavailable(
                "batches are waiting and no worker has sent a heartbeat within BATCH_STALE_AFTER"
            )


def collect():
    """Gauges for /metrics; none when the database cannot be read (the scrape still
    answers, with the counters)."""
    try:
        pending = Interaction.objects.filter(PENDING_SQL).count()
        active = dict(
            Batch.objects.active().values_list("status").annotate(n=Count("pk")).order_by()
        )
        since = live_since()
        live = Worker.objects.live(since=since)
        workers, threads = live.count(), live.threads()
        running = Interaction.objects.running(since=since).count()
        last_beat = Worker.objects.aggregate(last=Max("beat_at"))["last"]
    except DatabaseError:
        return
    yield gauge("batchsvc_pending_items", "Batch items waiting for a worker.", pending)
    batches = GaugeMetricFamily(
        "batchsvc_active_batches", "Batches queued or processing, by status.", labels=["status"]
    )
    for status in (BatchStatus.QUEUED, BatchStatus.PROCESSING):
        batches.add_metric([status.value], active.get(status, 0))
    yield batches
    yield gauge("batchsvc_live_workers", "Workers with a recent heartbeat.", workers)
    yield gauge(
        "batchsvc_worker_threads",
        "Conversations the live workers can run at once (their threads).",
        threads,
    )
    yield gauge("batchsvc_running_items", "Batch items a live worker is running.", running)
    if last_beat is not None:
        age = (timezone.now() - last_beat).total_seconds()
        yield gauge(
            "batchsvc_worker_heartbeat_age_seconds",
            "Seconds since the freshest worker heartbeat.",
            max(0.0, age),
        )
