"""The workers' own rows: each db_worker process's heartbeat, and the provider rate
limits' lanes that every worker shares."""

from django.db import models
from django.db.models import Sum


class WorkerQuerySet(models.QuerySet):
    def live(self, *, since):
        """Workers that have sent a heartbeat since ``since``."""
        return self.filter(beat_at__gte=since)

    def threads(self) -> int:
        """How many conversations these workers can run at once."""
        return self.aggregate(n=Sum("threads"))["n"] or 0


class Worker(models.Model):
    """A ``db_worker`` process and its last heartbeat, sent every few seconds whether it
    works or idles (a batch's own heartbeat only moves while someone works on it), so
    that readiness and metrics can tell an idle worker from a dead one."""

    name = models.CharField(max_length=200, unique=True, help_text="host:pid:random")
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField(db_index=True)
    threads = models.PositiveSmallIntegerField(
        default=0, help_text="conversations it runs at once, at most (its BATCH_CONCURRENCY)"
    )

    objects = WorkerQuerySet.as_manager()

    class Meta:
        ordering = ["-beat_at"]

    def __str__(self):
        return self.name


class Lane(models.Model):
    """A shared budget of calls to a model provider (see batches.processors.lanes): the Unix times
    at which its next request may start, its token budget is free again, and a pause
    asked for by a 429 ends. Kept here (or in Redis) so every worker shares it."""

    name = models.CharField(max_length=200, primary_key=True)
    requests_at = models.FloatField(default=0)
    tokens_at = models.FloatField(default=0)
    paused_until = models.FloatField(default=0)

    def __str__(self):
        return self.name
