from django.db import models
from django.urls import reverse

from traces.paths import PATH_MAX_CHARS

NAME_MAX = 255
ERROR_SUMMARY_MAX = 10_000


class RunStatus(models.TextChoices):
    RUNNING = "running"
    """The run has started and not reported an end."""
    SUCCESS = "success"
    """The run finished and did everything it was asked."""
    FAILURE = "failure"
    """The run finished and failed."""
    PARTIAL = "partial"
    """The run finished having done part of its work."""
    CANCELLED = "cancelled"
    """Someone stopped the run."""
    TIMEOUT = "timeout"
    """The run was stopped for taking too long."""


class RunQuerySet(models.QuerySet):
    def children_of(self, run: "Run"):
        return self.filter(parent_run_id=run.run_id)


class Run(models.Model):
    """One telemetry run reported by an agent.

    ``event_id`` is the client's idempotency key: sending the same event twice
    stores one run. ``parent_run_id`` is a plain string, not a foreign key,
    because a child may be reported before its parent.
    """

    event_id = models.UUIDField(unique=True)
    run_id = models.CharField(max_length=NAME_MAX, unique=True)
    parent_run_id = models.CharField(max_length=NAME_MAX, blank=True, db_index=True)
    agent_name = models.CharField(max_length=NAME_MAX)
    job_type = models.CharField(max_length=NAME_MAX)
    product = models.CharField(max_length=NAME_MAX, blank=True)
    git_repo = models.CharField(max_length=NAME_MAX, blank=True)
    git_branch = models.CharField(max_length=NAME_MAX, blank=True)
    git_commit = models.CharField(max_length=NAME_MAX, blank=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    start_time = models.DateTimeField(db_index=True)
    end_time = models.DateTimeField(null=True, blank=True)
    metrics_json = models.JSONField(null=True, blank=True)
    context_json = models.JSONField(null=True, blank=True)
    error_summary = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ["-start_time"]
        # Every index slows the bulk insert down: these serve the admin and the
        # list's usual questions (an agent's or a job type's latest runs).
        indexes = [
            models.Index(fields=["agent_name", "start_time"], name="run_agent_start"),
            models.Index(fields=["job_type", "start_time"], name="run_job_type_start"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=RunStatus.values), name="run_status_valid"
            ),
        ]

    def __str__(self):
        return self.run_id

    def get_absolute_url(self):
        return reverse("run-detail", kwargs={"run_id": self.run_id})


class TraceFileQuerySet(models.QuerySet):
    def for_run(self, run_id: str):
        return self.filter(run_id=run_id)

    def under(self, path_prefix: str):
        return self.filter(path__startswith=path_prefix)


class TraceFile(models.Model):
    """One trace file written under the ``traces`` storage root.

    ``path`` is relative to the root and unique: writing a path again replaces
    the file and updates this row. ``run`` points at ``Run.run_id`` (so the
    column holds the run_id the client sent) with no database constraint: a job
    may write its traces before its run is uploaded, as a child run may arrive
    before its parent, and the file links up with the run when it comes. The file
    outlives its run.
    """

    path = models.CharField(max_length=PATH_MAX_CHARS, unique=True)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    run = models.ForeignKey(
        Run,
        to_field="run_id",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="trace_files",
        db_constraint=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TraceFileQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["created_at"], name="tracefile_created")]

    def __str__(self):
        return self.path

    @property
    def file_name(self) -> str:
        return self.path.rpartition("/")[2]
