from django.conf import settings
from django.db import models
from django.urls import reverse

from batchsvc.api.ownership import OwnedQuerySet
from traces.paths import PATH_MAX_CHARS, STORAGE_NAME_MAX

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


class RunQuerySet(OwnedQuerySet):
    def children_of(self, run: "Run"):
        return self.filter(owner_id=run.owner_id, parent_run_id=run.run_id)

    def parent_of(self, run: "Run"):
        return self.filter(owner_id=run.owner_id, run_id=run.parent_run_id)


def _owner_field(related_name: str):
    # SET_NULL: a deleted user's objects stay for staff to read; nobody writes as no one.
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name=related_name,
        db_index=False,  # every owned table's unique indexes start with the owner
    )


class Run(models.Model):
    """One telemetry run reported by an agent.

    ``event_id`` is the client's idempotency key: sending the same event twice
    stores one run. It and ``run_id`` are unique per owner: two agents' identifiers
    never meet. ``parent_run_id`` is a plain string, not a foreign key, because a
    child may be reported before its parent.
    """

    owner = _owner_field("runs")
    event_id = models.UUIDField()
    run_id = models.CharField(max_length=NAME_MAX)
    parent_run_id = models.CharField(max_length=NAME_MAX, blank=True)
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
            # A plain index: db_index=True would add a second one on PostgreSQL, for
            # LIKE, that no query uses and every insert writes.
            models.Index(fields=["parent_run_id"], name="run_parent_run_id"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["owner", "event_id"], name="run_owner_event_id"),
            models.UniqueConstraint(fields=["owner", "run_id"], name="run_owner_run_id"),
            models.CheckConstraint(
                condition=models.Q(status__in=RunStatus.values), name="run_status_valid"
            ),
        ]

    def __str__(self):
        return self.run_id

    def get_absolute_url(self):
        return reverse("run-detail", kwargs={"run_id": self.run_id})


class TraceFileQuerySet(OwnedQuerySet):
    def for_run(self, run_id: str):
        return self.filter(run_id=run_id)

    def under(self, path_prefix: str):
        return self.filter(path__startswith=path_prefix)


class TraceFile(models.Model):
    """One trace file written under the ``traces`` storage root.

    ``path`` is the path the client sent, unique per owner: writing it again
    replaces the file and updates this row. The file itself is stored under
    ``storage_name``, the path inside the owner's namespace, so two owners' files
    never meet on disk; it is kept on the row so the file stays reachable if its
    owner is deleted. ``run_id`` names a run of the same owner; a plain string,
    since a job may write its traces before its run is uploaded. The file
    outlives its run.
    """

    owner = _owner_field("trace_files")
    path = models.CharField(max_length=PATH_MAX_CHARS)
    storage_name = models.CharField(max_length=STORAGE_NAME_MAX)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    # None, not "": the API answers null for a file of no run, as it did with a foreign key.
    run_id = models.CharField(max_length=NAME_MAX, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TraceFileQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["created_at"], name="tracefile_created"),
            models.Index(fields=["owner", "run_id"], name="tracefile_owner_run"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["owner", "path"], name="tracefile_owner_path"),
        ]

    def __str__(self):
        return self.path

    @property
    def file_name(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def run(self) -> Run | None:
        """The run this file names, once it is stored."""
        if not self.run_id:
            return None
        return Run.objects.filter(owner_id=self.owner_id, run_id=self.run_id).first()
