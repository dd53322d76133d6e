"""Batches of spreadsheet rows sent, row by row, to a chat processor in the background.

How work is shared (see batches.engine.worker and batches.engine.claims for the worker
side): the rows of one chat_id form a *conversation* and run strictly in row order. A
worker thread claims a conversation by turning its *head* (its lowest unfinished row)
to ``running`` with its own ``claimed_by`` and a fresh ``heartbeat_at``; while it works,
it moves the running mark down the conversation one row at a time and refreshes the heartbeat.
A conversation is free again when its head is ``pending`` or when its running head's
heartbeat is older than BATCH_STALE_AFTER (its worker died).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import BooleanField, Exists, F, OuterRef, Q, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from batchsvc.api.ownership import OwnedQuerySet

NAME_MAX = 255


class BatchStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    """Created and waiting for a worker."""
    PROCESSING = "processing", "processing"
    """A worker has started on its items."""
    PROCESSED = "processed", "completed"
    """Every item succeeded."""
    COMPLETED_WITH_ERRORS = "completed_with_errors", "completed with errors"
    """Every item ran; some failed, some succeeded."""
    FAILED = "failed", "failed"
    """Every item ran and none succeeded, or the processor could not be used at all."""
    CANCELLING = "cancelling", "cancelling"
    """Someone cancelled it: the items not started are cancelled, and the items that
    were running finish before it is cancelled."""
    CANCELLED = "cancelled", "cancelled"
    """Cancelled, and none of its items runs any more."""


class BatchPriority(models.TextChoices):
    LOW = "low", "low"
    """Runs after this owner's other batches."""
    NORMAL = "normal", "normal"
    """The default."""
    HIGH = "high", "high"
    """Runs before this owner's other batches."""


# Higher first among one owner's batches (see batches.engine.claims).
PRIORITY_RANK = {BatchPriority.HIGH: 0, BatchPriority.NORMAL: 1, BatchPriority.LOW: 2}


def worker_threads() -> int:
    """How many conversations a worker runs at once: its threads (BATCH_CONCURRENCY)."""
    return max(1, settings.BATCH_CONCURRENCY)


def concurrency_cap(concurrency: int | None) -> int:
    """How many of a batch's conversations may run at once, over all workers: its own
    ``concurrency``, else BATCH_CONCURRENCY_DEFAULT, never above BATCH_CONCURRENCY_MAX."""
    limit = max(1, settings.BATCH_CONCURRENCY_MAX)
    return min(concurrency or max(1, settings.BATCH_CONCURRENCY_DEFAULT), limit)


ACTIVE_BATCH = (BatchStatus.QUEUED, BatchStatus.PROCESSING)
# Not over yet: still active, or cancelled with items still running.
UNENDED_BATCH = (*ACTIVE_BATCH, BatchStatus.CANCELLING)
CANCELLED_BATCH = (BatchStatus.CANCELLING, BatchStatus.CANCELLED)
RETRYABLE_BATCH = (BatchStatus.COMPLETED_WITH_ERRORS, BatchStatus.FAILED)
RAN_TO_THE_END = (BatchStatus.PROCESSED, *RETRYABLE_BATCH)


class InteractionStatus(models.TextChoices):
    PENDING = "pending", "pending"
    """Waiting for its turn."""
    RUNNING = "running", "running"
    """A worker is processing it (or died processing it: see heartbeat_at)."""
    SUCCEEDED = "succeeded", "succeeded"
    """The processor answered; the answer is in output."""
    FAILED = "failed", "failed"
    """The processor failed; the reason is in error."""
    CANCELLED = "cancelled", "cancelled"
    """Its batch was cancelled before it started."""


UNFINISHED = (InteractionStatus.PENDING, InteractionStatus.RUNNING)


def _literal_status(status: str) -> RawSQL:
    """``status = '<status>'`` as literal SQL: SQLite uses a partial index only when
    the query states its condition word for word, which a bound parameter never does."""
    return RawSQL(f"\"status\" = '{status}'", (), output_field=BooleanField())


PENDING_SQL = _literal_status(InteractionStatus.PENDING)
RUNNING_SQL = _literal_status(InteractionStatus.RUNNING)
FAILED_SQL = _literal_status(InteractionStatus.FAILED)


class BatchQuerySet(OwnedQuerySet):
    def active(self):
        return self.filter(status__in=ACTIVE_BATCH)

    def orphaned(self, *, before):
        """Active batches no live worker has touched since ``before``."""
        return self.active().filter(heartbeat_at__lt=before)

    def cancelled_unfinished(self, *, before):
        """Cancelled batches no live worker has touched since ``before`` whose worker
        died before finishing them: they still have a running row (its heartbeat is
        stale too), or their counters do not add up to their rows (rows recorded
        after the cancel, never counted, whether or not the worker beat again)."""
        stale_rows = Interaction.objects.stale(before=before).order_by().values("batch_id")
        counted = F("processed_items") + F("failed_items") + F("cancelled_items")
        return self.filter(status__in=CANCELLED_BATCH, heartbeat_at__lt=before).filter(
            Q(pk__in=stale_rows) | ~Q(total_items=counted)
        )


class Batch(models.Model):
    """One uploaded spreadsheet and the state of its processing."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=NAME_MAX, blank=True)
    # SET_NULL: a deleted user's batches stay for staff to read.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="batches"
    )
    processor = models.CharField(max_length=64, default="echo")
    options = models.JSONField(default=dict, blank=True)
    status = models.CharField(
        max_length=32, choices=BatchStatus.choices, default=BatchStatus.QUEUED
    )
    priority = models.CharField(
        max_length=8, choices=BatchPriority.choices, default=BatchPriority.NORMAL
    )
    concurrency = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="how many of its conversations may run at once (empty: the server's default)",
    )
    total_items = models.PositiveIntegerField(default=0)
    processed_items = models.PositiveIntegerField(default=0, help_text="succeeded items")
    failed_items = models.PositiveIntegerField(default=0)
    cancelled_items = models.PositiveIntegerField(default=0)
    source_name = models.CharField("source file name", max_length=NAME_MAX, blank=True)
    columns = models.JSONField(default=list, blank=True, help_text="the upload's columns")
    skipped_count = models.PositiveIntegerField(
        default=0, help_text="rows of the upload skipped because they had no question"
    )
    skipped_rows = models.JSONField(
        default=list, blank=True, help_text='the first skipped rows: [{"row": 5, "error": ...}]'
    )
    error = models.TextField(blank=True, help_text="why the whole batch failed, if it did")
    idempotency_key = models.CharField(max_length=NAME_MAX, blank=True)
    request_fingerprint = models.CharField(
        max_length=64,
        blank=True,
        help_text="sha256 of the upload request, to tell its retries from other requests "
        "with the same Idempotency-Key",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="when it first started")
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Its time processing is earlier_seconds (before its last retry) plus the time since
    # resumed_at (its last start), so a retry does not reset its pace.
    resumed_at = models.DateTimeField(null=True, blank=True)
    earlier_seconds = models.FloatField(default=0, db_default=0)
    # Bumped by every worker task working on the batch; an active batch whose
    # heartbeat is stale has lost its workers (see batches.engine.recovery).
    heartbeat_at = models.DateTimeField(default=timezone.now)
    # When a worker last claimed one of its conversations: owners served longest ago
    # go first among equals (see batches.engine.claims).
    claimed_at = models.DateTimeField(null=True, blank=True)

    objects = BatchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="batch_owner_created"),
            models.Index(
                fields=["heartbeat_at"],
                name="batch_active_heartbeat",
                condition=Q(status__in=ACTIVE_BATCH),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="batch_owner_idempotency_key",
            ),
            models.CheckConstraint(
                condition=Q(status__in=BatchStatus.values), name="batch_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(priority__in=BatchPriority.values), name="batch_priority_valid"
            ),
        ]

    def __str__(self):
        return self.name or str(self.id)

    def get_absolute_url(self):
        return reverse("batch-detail", kwargs={"pk": self.pk})

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_BATCH

    @property
    def is_over(self) -> bool:
        """Ended: nothing of it runs or will run (a cancelling batch is not over)."""
        return self.status not in UNENDED_BATCH

    def processing_seconds(self, *, now) -> float | None:
        """How long it has been processing, over all its attempts (None: never started)."""
        if self.started_at is None:
            return None
        resumed = self.resumed_at
        if resumed is None and self.status != BatchStatus.QUEUED:
            resumed = self.started_at  # (queued again after a retry, it has not resumed yet)
        spell = ((self.finished_at or now) - resumed).total_seconds() if resumed else 0.0
        return self.earlier_seconds + max(spell, 0.0)

    @property
    def cap(self) -> int:
        return concurrency_cap(self.concurrency)

    @property
    def progress(self) -> int:
        """Whole percent of items that ran (succeeded or failed). Cancelled items do
        not count: a cancelled batch shows how far it got, never 100 for work not done."""
        if not self.total_items:
            return 100 if self.status in RAN_TO_THE_END else 0
        ran = self.processed_items + self.failed_items
        return min(100, ran * 100 // self.total_items)

    @property
    def ended_progress(self) -> int:
        """Whole percent of items that have ended, ran or cancelled: 100 once nothing
        is left to do, however the batch ended."""
        if not self.total_items:
            return 0 if self.is_active else 100
        ended = self.processed_items + self.failed_items + self.cancelled_items
        return min(100, ended * 100 // self.total_items)

    # State changes: conditional UPDATEs of the fields they change, because workers,
    # the API and the admin change one batch at the same time (a cancel must not be
    # overwritten by a worker that read the batch a moment before).

    def mark_processing(self) -> bool:
        """Queued to processing; started_at stays its first start (a retry resumes it)."""
        now = timezone.now()
        changed = Batch.objects.filter(pk=self.pk, status=BatchStatus.QUEUED).update(
            status=BatchStatus.PROCESSING,
            started_at=Coalesce(F("started_at"), Value(now)),
            resumed_at=now,
            heartbeat_at=now,
            updated_at=now,
        )
        if changed:
            self.status, self.resumed_at, self.heartbeat_at = BatchStatus.PROCESSING, now, now
            self.started_at = self.started_at or now
        return bool(changed)

    def touch(self) -> None:
        """Heartbeat: a live worker is on this batch."""
        Batch.objects.filter(pk=self.pk).update(heartbeat_at=timezone.now())


class InteractionQuerySet(OwnedQuerySet):
    owner_field = "batch__owner"

    def pending(self):
        return self.filter(status=InteractionStatus.PENDING)

    def unfinished(self):
        return self.filter(status__in=UNFINISHED)

    def running(self, *, since):
        """Items a live worker runs now: each holds one of its threads."""
        return self.filter(RUNNING_SQL, heartbeat_at__gte=since)

    def stale(self, *, before):
        """Running items whose worker has not sent a heartbeat since ``before``: the
        heads of conversations whose worker died (a running row is always its
        conversation's first unfinished row)."""
        return self.filter(RUNNING_SQL, heartbeat_at__lt=before).order_by("heartbeat_at")

    def heads(self, batch):
        """Pending rows of ``batch`` that are first among the unfinished rows of their
        conversation, in row order: the conversations a worker may claim next
        (besides stale ones). Scans pending rows in row order, so it reads no
        finished row, only the queued rows of conversations already claimed."""
        earlier = Interaction.objects.filter(
            batch=OuterRef("batch"),
            conversation=OuterRef("conversation"),
            row_number__lt=OuterRef("row_number"),
            status__in=UNFINISHED,
        )
        return self.filter(PENDING_SQL, batch=batch).exclude(Exists(earlier)).order_by("row_number")

    def counts(self) -> dict[str, int]:
        rows = self.values_list("status").annotate(n=models.Count("pk")).order_by()
        return {status: n for status, n in rows}


class Interaction(models.Model):
    """One row of a batch: the question sent and the processor's answer."""

    # No index of its own: the unique (batch, row_number) index starts with it.
    batch = models.ForeignKey(
        Batch, on_delete=models.CASCADE, related_name="interactions", db_index=False
    )
    row_number = models.PositiveIntegerField(help_text="row in the uploaded file (header = 1)")
    chat_id = models.CharField(max_length=NAME_MAX, blank=True)
    # Rows sharing a chat_id share a conversation number; a blank chat_id is a
    # conversation of its own. Numbered from 1 in order of first appearance.
    conversation = models.PositiveIntegerField()
    input = models.JSONField(help_text="every column of the row")
    output = models.JSONField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=InteractionStatus.choices, default=InteractionStatus.PENDING
    )
    error = models.TextField(blank=True)
    # Failed items whose errors differ only in numbers, ids and quoted values share
    # this key (batches.failures): the batch's failure groups.
    error_group = models.CharField(max_length=16, blank=True, default="", db_default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=80, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # The tokens the model reported it used (openai's ``usage``); empty when it did not.
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    total_tokens = models.PositiveIntegerField(null=True, blank=True)

    objects = InteractionQuerySet.as_manager()

    class Meta:
        ordering = ["batch", "row_number"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "row_number"], name="interaction_batch_row"),
            models.CheckConstraint(
                condition=Q(status__in=InteractionStatus.values),
                name="interaction_status_valid",
            ),
        ]
        indexes = [
            # The worker's hot queries: pending rows of a batch in row order
            # (InteractionQuerySet.heads), running rows by heartbeat (.stale). Small:
            # a row is in one of them only while it waits or runs.
            models.Index(
                fields=["batch", "row_number"],
                name="interaction_pending",
                condition=Q(status=InteractionStatus.PENDING),
            ),
            models.Index(
                fields=["batch", "heartbeat_at"],
                name="interaction_running",
                condition=Q(status=InteractionStatus.RUNNING),
            ),
            # A conversation's rows: its earlier rows when claiming it, its history.
            models.Index(
                fields=["batch", "conversation", "row_number"], name="interaction_conversation"
            ),
            # The failure groups of a batch, and the items of one group to retry.
            models.Index(
                fields=["batch", "error_group", "finished_at"],
                name="interaction_failed",
                condition=Q(status=InteractionStatus.FAILED),
            ),
        ]

    def __str__(self):
        return f"{self.batch_id} row {self.row_number}"

    @property
    def answer_first_line(self) -> str:
        """The first line of the processor's answer, for lists."""
        text = (self.output or {}).get("text") if isinstance(self.output, dict) else None
        return str(text).strip().partition("\n")[0] if text else ""
