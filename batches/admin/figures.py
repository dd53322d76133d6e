"""The batch figures the admin's pages show, each one a span that
templates/admin/batches/progress_script.html keeps up to date from the batch's API
answer, so that no two figures on a screen can disagree."""

from datetime import UTC

from django.urls import reverse
from django.utils.html import format_html

from batches.models import Batch, BatchStatus


def progress_bar(batch: Batch):
    """A bar of what ran and what was cancelled, that
    templates/admin/batches/progress_script.html keeps up to date from the batch's
    API answer, with every other figure of the batch on the page."""
    cancelled = batch.ended_progress - batch.progress
    return format_html(
        '<div class="batch-progress" data-url="{}" data-status="{}">'
        '<div class="batch-progress-bar" style="width: {}%"></div>'
        '<div class="batch-progress-cancelled" style="width: {}%"></div>'
        '<span class="batch-progress-text">{}</span></div>',
        api_url(batch),
        batch.status,
        batch.progress,
        cancelled,
        progress_text(batch.progress, batch.cancelled_items),
    )


def progress_text(progress: int, cancelled: int) -> str:
    # The script writes the same words (templates/admin/batches/progress_script.html).
    return f"{progress}%" + (f" · {cancelled} cancelled" if cancelled else "")


def live(batch: Batch, field: str, value, *, kind: str = ""):
    """A figure of the batch the page's script refreshes from the same API answer
    as the bar, so that no two figures on a screen can disagree. ``kind`` says how it
    is written: duration, status (in words), time (UTC), or as it is."""
    return format_html(
        '<span data-batch-url="{}" data-batch-field="{}" data-kind="{}">{}</span>',
        api_url(batch),
        field,
        kind,
        shown(value, kind),
    )


def shown(value, kind: str = "") -> str:
    # The same words as the page's script (templates/admin/batches/progress_script.html).
    if value is None:
        return "—"
    if kind == "duration":
        return duration_text(value)
    if kind == "status":
        return STATUS_WORDS.get(value, value)
    if kind == "time":
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


STATUS_WORDS = dict(BatchStatus.choices)


def duration_text(seconds: float) -> str:
    whole = round(seconds)
    hours, minutes = whole // 3600, whole % 3600 // 60
    text = f"{hours} h " if hours else ""
    text += f"{minutes} min " if hours or minutes else ""
    return f"{text}{whole % 60} s"


def api_url(batch: Batch) -> str:
    return reverse("batch-detail", kwargs={"pk": batch.pk})
