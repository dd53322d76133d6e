from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.defaultfilters import truncatechars
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from batches import services
from batches.forms import BatchAddForm
from batches.models import Batch, BatchStatus, Interaction, InteractionStatus
from batches.selectors import batch_pace, batch_usage, batch_waiting_for, status_counts
from batches.views import results_response
from batchsvc.admin import AuditAdmin, OwnedAdmin, pretty_json
from batchsvc.api.errors import ApiError

ITEMS_PER_PAGE = 50


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
        _api_url(batch),
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
    as the bar, so that no two figures on a screen can disagree."""
    shown = duration_text(value) if kind == "duration" else "—" if value is None else value
    return format_html(
        '<span data-batch-url="{}" data-batch-field="{}" data-kind="{}">{}</span>',
        _api_url(batch),
        field,
        kind,
        shown,
    )


def duration_text(seconds: float | None) -> str:
    # The same words as the page's script (templates/admin/batches/progress_script.html).
    if seconds is None:
        return "—"
    whole = round(seconds)
    hours, minutes = whole // 3600, whole % 3600 // 60
    text = f"{hours} h " if hours else ""
    text += f"{minutes} min " if hours or minutes else ""
    return f"{text}{whole % 60} s"


def _api_url(batch: Batch) -> str:
    return reverse("batch-detail", kwargs={"pk": batch.pk})


@admin.register(Batch)
class BatchAdmin(OwnedAdmin, AuditAdmin, admin.ModelAdmin):
    list_display = ["display_name", "owner", "live_status", "counts", "progress", "created"]
    list_filter = ["status", "owner", "processor"]
    list_select_related = ["owner"]
    search_fields = ["=id", "name", "owner__username", "source_name"]
    show_full_result_count = False
    list_per_page = 50
    actions = ["cancel", "retry_failed", "download_csv", "download_xlsx", "download_json"]
    fields = [
        ("id", "name"),
        ("owner", "processor"),
        "live_status",
        "progress",
        ("total_items", "live_processed", "live_failed", "live_cancelled"),
        "pace",
        "waiting_for",
        "usage",
        "source_name",
        "options_json",
        "error",
        "downloads",
        ("created_at", "started_at", "finished_at", "updated_at"),
    ]
    readonly_fields = [
        name for row in fields for name in (row if isinstance(row, tuple) else (row,))
    ]

    def has_add_permission(self, request, obj=None):
        # Uploads, not edits: the same service as the API creates the batch.
        codename = get_permission_codename("add", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = BatchAddForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                data = form.cleaned_data
                created = services.batch_create(
                    owner=request.user,
                    upload=data["file"],
                    name=data["name"],
                    processor=data["processor"],
                    options=data["options"],
                    priority=data["priority"],
                    concurrency=data["concurrency"],
                )
            except ApiError as exc:
                form.add_error(None, exc.message)  # the API's own sentence
            else:
                batch = created.batch
                self.message_user(
                    request,
                    f"Batch {batch} queued with {batch.total_items} items.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:batches_batch_change", args=[batch.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Add batch",
            "opts": self.opts,
            "form": form,
            "preview_url": reverse("batch-list") + "?dry_run=true",
        }
        return TemplateResponse(request, "admin/batches/batch/add_form.html", context)

    def get_urls(self):
        own = [
            path(
                "<uuid:object_id>/cancel/",
                self.admin_site.admin_view(self.cancel_view),
                name="batches_batch_cancel",
            ),
            path(
                "<uuid:object_id>/retry-failed/",
                self.admin_site.admin_view(self.retry_failed_view),
                name="batches_batch_retry_failed",
            ),
        ]
        return own + super().get_urls()

    @admin.display(description="name", ordering="name")
    def display_name(self, batch):
        return str(batch)

    @admin.display(description="progress")
    def progress(self, batch):
        return progress_bar(batch)

    @admin.display(description="status", ordering="status")
    def live_status(self, batch):
        return live(batch, "status", batch.status)

    @admin.display(description="succeeded", ordering="processed_items")
    def live_processed(self, batch):
        return live(batch, "processed_items", batch.processed_items)

    @admin.display(description="failed", ordering="failed_items")
    def live_failed(self, batch):
        return live(batch, "failed_items", batch.failed_items)

    @admin.display(description="succeeded / failed of")
    def counts(self, batch):
        return format_html(
            "{} / {} of {}",
            live(batch, "processed_items", batch.processed_items),
            live(batch, "failed_items", batch.failed_items),
            batch.total_items,
        )

    @admin.display(description="created", ordering="created_at")
    def created(self, batch):
        return timezone.localtime(batch.created_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="cancelled")
    def live_cancelled(self, batch):
        return live(batch, "cancelled_items", batch.cancelled_items)

    @admin.display(description="pace")
    def pace(self, batch):
        figures = batch_pace(batch)
        return format_html(
            "{} items/min since the start, {} over the last minute; {} elapsed; {} left",
            live(batch, "pace.items_per_minute", figures["items_per_minute"]),
            live(
                batch, "pace.items_per_minute_last_minute", figures["items_per_minute_last_minute"]
            ),
            live(batch, "pace.elapsed_seconds", figures["elapsed_seconds"], kind="duration"),
            live(batch, "pace.eta_seconds", figures["eta_seconds"], kind="duration"),
        )

    @admin.display(description="waiting for")
    def waiting_for(self, batch):
        waiting = batch_waiting_for(batch)
        return live(batch, "waiting_for.message", waiting and waiting["message"])

    @admin.display(description="tokens")
    def usage(self, batch):
        usage = batch_usage(batch)
        cost = usage["estimated_cost"]
        return format_html(
            "{} prompt + {} completion = {} tokens; estimated cost: {}",
            live(batch, "usage.prompt_tokens", usage["prompt_tokens"]),
            live(batch, "usage.completion_tokens", usage["completion_tokens"]),
            live(batch, "usage.total_tokens", usage["total_tokens"]),
            live(batch, "usage.estimated_cost", f"{cost}")
            if cost is not None
            else f"— (BATCH_MODEL_PRICES has no price for {usage['model'] or 'this processor'})",
        )

    @admin.display(description="options")
    def options_json(self, batch):
        return pretty_json(batch.options)

    @admin.display(description="results")
    def downloads(self, batch):
        url = reverse("batch-results", kwargs={"pk": batch.pk})
        return format_html(
            '<a href="{}?format=csv">CSV</a> · <a href="{}?format=xlsx">XLSX</a> · '
            '<a href="{}?format=json">JSON</a>',
            url,
            url,
            url,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        batch = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if batch is not None:
            extra_context.update(items_context(batch, request.GET))
            may_operate = self.has_operate_permission(request)
            extra_context["can_cancel"] = may_operate and batch.is_active
            extra_context["can_retry"] = may_operate and batch.status in (
                BatchStatus.COMPLETED_WITH_ERRORS,
                BatchStatus.FAILED,
            )
        return super().change_view(request, object_id, form_url, extra_context)

    # Actions: the same services as the API --------------------------------------

    def has_operate_permission(self, request, obj=None) -> bool:
        """Cancel and retry change a batch, so they need the change permission on
        batches; has_change_permission says False to everyone (AuditAdmin: no field
        is edited here), so the user's permission is asked directly."""
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    def _each(self, request, queryset, service, done: str):
        changed = 0
        for batch in queryset:
            try:
                service(batch=batch)
                changed += 1
            except ApiError as exc:
                self.message_user(request, f"{batch}: {exc.message}", messages.WARNING)
        if changed:
            self.message_user(request, f"{changed} batch(es) {done}.", messages.SUCCESS)

    @admin.action(description="Cancel selected batches", permissions=["operate"])
    def cancel(self, request, queryset):
        self._each(request, queryset, services.batch_cancel, "cancelled")

    @admin.action(description="Retry the failed items of selected batches", permissions=["operate"])
    def retry_failed(self, request, queryset):
        self._each(request, queryset, services.batch_retry_failed, "queued again")

    def _download(self, request, queryset, format: str):
        if queryset.count() != 1:
            self.message_user(request, "Select one batch to download.", messages.WARNING)
            return None
        return results_response(queryset.get(), format)

    @admin.action(description="Download results (CSV)")
    def download_csv(self, request, queryset):
        return self._download(request, queryset, "csv")

    @admin.action(description="Download results (XLSX)")
    def download_xlsx(self, request, queryset):
        return self._download(request, queryset, "xlsx")

    @admin.action(description="Download results (JSON)")
    def download_json(self, request, queryset):
        return self._download(request, queryset, "json")

    def cancel_view(self, request, object_id):
        return self._object_action(request, object_id, self.cancel)

    def retry_failed_view(self, request, object_id):
        return self._object_action(request, object_id, self.retry_failed)

    def _object_action(self, request, object_id, action):
        batch = get_object_or_404(Batch, pk=object_id)
        if not self.has_operate_permission(request, batch):
            raise PermissionDenied
        if request.method == "POST":
            action(request, Batch.objects.filter(pk=batch.pk))
        return HttpResponseRedirect(reverse("admin:batches_batch_change", args=[batch.pk]))


def items_context(batch: Batch, query) -> dict:
    """The batch page's items: one status (or all) a page at a time, with the count
    of each status."""
    status = query.get("items_status", "")
    items = batch.interactions.order_by("row_number")
    if status in InteractionStatus.values:
        items = items.filter(status=status)
    else:
        status = ""
    counts = status_counts(batch)
    return {
        "items_page": Paginator(items, ITEMS_PER_PAGE).get_page(query.get("items")),
        "items_status": status,
        "items_counts": [(name, counts[name]) for name in InteractionStatus.values],
        "items_total": sum(counts.values()),
    }


@admin.register(Interaction)
class InteractionAdmin(OwnedAdmin, AuditAdmin, admin.ModelAdmin):
    list_display = [
        *("row_number", "batch", "owner", "chat_id", "question", "status"),
        *("answer", "short_error", "attempts", "total_tokens"),
    ]
    list_filter = ["status", ("batch__owner", admin.RelatedFieldListFilter)]
    list_select_related = ["batch__owner"]
    search_fields = ["=batch__id", "chat_id", "=batch__owner__username"]
    show_full_result_count = False
    list_per_page = 100
    readonly_fields = [
        "batch",
        "row_number",
        "chat_id",
        "status",
        "input_json",
        "output_json",
        "error",
        "attempts",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "started_at",
        "finished_at",
        "claimed_by",
        "heartbeat_at",
    ]
    fields = readonly_fields

    @admin.display(description="owner", ordering="batch__owner")
    def owner(self, item):
        return item.batch.owner

    @admin.display(description="question")
    def question(self, item):
        return str(item.input.get("question", ""))[:80]

    @admin.display(description="answer (first line)")
    def answer(self, item):
        return truncatechars(item.answer_first_line, 80)

    @admin.display(description="error")
    def short_error(self, item):
        return truncatechars(item.error, 120)

    @admin.display(description="input")
    def input_json(self, item):
        return pretty_json(item.input)

    @admin.display(description="output")
    def output_json(self, item):
        return pretty_json(item.output)
