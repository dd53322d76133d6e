"""Files and batches as the OpenAI-compatible Batch API sees them.

A batch of this surface is a batches.Batch (processor ``openai_batch``) with one
Interaction per line of its input file, run by the same workers as every other batch;
:class:`OpenAIBatch` adds what OpenAI's batch object has and ours has not. A
:class:`File` is an uploaded input file, kept in the storage that holds trace files,
or one of a batch's two result files (its output and its errors), whose lines are
the batch's finished interactions (see openai_api.results).
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from batches.models import Batch
from batchsvc.api.ownership import OwnedQuerySet


class FilePurpose(models.TextChoices):
    BATCH = "batch"
    """An input file of batches, uploaded."""
    BATCH_OUTPUT = "batch_output"
    """A batch's output or error file, written from its finished lines."""


class Lines(models.TextChoices):
    OUTPUT = "output"
    """The lines the provider answered with a success."""
    ERROR = "error"
    """The lines answered with an error, never sent, or cancelled."""


class FileQuerySet(OwnedQuerySet):
    def unexpired(self, *, now=None):
        """Files whose expires_at has not passed: an expired file is gone."""
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now or timezone.now()))


class File(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # SET_NULL: a deleted user's files stay for staff to read, as their batches do.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="openai_files",
    )
    purpose = models.CharField(max_length=16, choices=FilePurpose.choices)
    filename = models.CharField(max_length=255)
    bytes = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="empty: a result file not written to the storage yet"
    )
    storage_name = models.CharField(
        max_length=300, blank=True, help_text='its bytes in the "traces" storage'
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    # A result file: the batch whose lines it holds, and which of them.
    batch = models.ForeignKey(
        Batch, on_delete=models.CASCADE, null=True, blank=True, related_name="openai_files"
    )
    lines = models.CharField(max_length=8, choices=Lines.choices, blank=True)
    written_for = models.CharField(
        max_length=100,
        blank=True,
        help_text="the state of the batch whose lines the stored bytes hold",
    )

    objects = FileQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["owner", "-created_at"], name="openai_file_owner_created")]
        constraints = [
            models.CheckConstraint(
                condition=Q(purpose__in=FilePurpose.values), name="openai_file_purpose_valid"
            ),
            models.UniqueConstraint(
                fields=["batch", "lines"],
                condition=Q(batch__isnull=False),
                name="openai_file_batch_lines",
            ),
        ]

    def __str__(self):
        return self.filename

    @property
    def openai_id(self) -> str:
        return f"file-{self.id.hex}"


class OpenAIBatch(models.Model):
    """What OpenAI's batch object says beyond our Batch."""

    batch = models.OneToOneField(
        Batch, on_delete=models.CASCADE, primary_key=True, related_name="openai"
    )
    # The file's id is kept when the file is deleted, as OpenAI keeps it.
    input_file_uuid = models.UUIDField()
    endpoint = models.CharField(max_length=64)
    completion_window = models.CharField(max_length=8, default="24h")
    metadata = models.JSONField(null=True, blank=True)
    model = models.CharField(
        max_length=255, blank=True, help_text="the model every line asks for, if one"
    )
    expires_at = models.DateTimeField()
    output_file = models.OneToOneField(
        File, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    error_file = models.OneToOneField(
        File, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    settled = models.JSONField(
        null=True,
        blank=True,
        help_text="the final status and usage, once the batch has ended (a cache)",
    )

    class Meta:
        verbose_name = "OpenAI batch"

    def __str__(self):
        return f"batch_{self.batch_id.hex}"
