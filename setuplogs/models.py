"""Per-run setup log lines: what an agent printed while it set up and ran a job."""

from django.db import models
from django.db.models import Subquery
from django.db.models.functions import Coalesce

from batchsvc.api.ownership import OwnedQuerySet
from traces.models import Run

CLIENT_ID_MAX = 100


class LogLevel(models.TextChoices):
    DEBUG = "debug"
    """Detail for whoever debugs the agent."""
    INFO = "info"
    """Normal progress."""
    WARNING = "warning"
    """Something unexpected that the job survived."""
    ERROR = "error"
    """Something failed."""
    CRITICAL = "critical"
    """The job cannot go on."""

    @classmethod
    def at_least(cls, level: str) -> list[str]:
        """``level`` and every more severe level."""
        values = cls.values
        return values[values.index(level) :]


class LogEntryQuerySet(OwnedQuerySet):
    owner_field = "run__owner"  # a line is visible and writable exactly when its run is

    def of_run(self, run: Run):
        return self.filter(run=run)

    def after(self, seq: int):
        """The lines after ``seq``, which the (run, seq) unique index answers."""
        return self.filter(seq__gt=seq)

    def last_lines(self, count: int):
        """The last ``count`` lines of this queryset, in one query: those from the
        seq of the count-th last line on."""
        nth_last = self.order_by("-seq").values_list("seq")[count - 1 : count]
        return self.filter(seq__gte=Coalesce(Subquery(nth_last), 0))


class LogEntry(models.Model):
    """One log line of a run.

    ``seq`` is the line's place in its run, assigned by the server in arrival
    order; readers tail a run with "lines after seq N". ``client_id`` is the
    client's idempotency key: a line whose client_id the run already holds is not
    stored again, so a retried batch is stored once.
    """

    # No index of its own: the (run, seq) unique index starts with run.
    run = models.ForeignKey(
        Run, on_delete=models.CASCADE, related_name="log_entries", db_index=False
    )
    seq = models.BigIntegerField()
    timestamp = models.DateTimeField(help_text="When the client logged the line.")
    level = models.CharField(max_length=8, choices=LogLevel.choices, default=LogLevel.INFO)
    message = models.TextField()
    client_id = models.CharField(max_length=CLIENT_ID_MAX, blank=True)
    received_at = models.DateTimeField()

    objects = LogEntryQuerySet.as_manager()

    class Meta:
        ordering = ["run", "seq"]
        verbose_name = "log line"
        constraints = [
            models.UniqueConstraint(fields=["run", "seq"], name="logentry_run_seq_unique"),
            models.UniqueConstraint(
                fields=["run", "client_id"],
                condition=~models.Q(client_id=""),
                name="logentry_run_client_id_unique",
            ),
            models.CheckConstraint(
                condition=models.Q(level__in=LogLevel.values), name="logentry_level_valid"
            ),
        ]

    def __str__(self):
        return f"{self.run_id}#{self.seq}"
