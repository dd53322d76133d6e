"""The batch admin: upload, follow every figure live, cancel, retry all failed items
or one failure group, download the results."""

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from batches import services
from batches.admin.figures import STATUS_WORDS, live, progress_bar, shown
from batches.admin.items import items_context
from batches.forms import BatchAddForm
from batches.models import RETRYABLE_BATCH, Batch
from batches.processors.base import reports_usage
from batches.selectors import (
    batch_attempts,
    batch_pace,
    batch_usage,
    batch_waiting_for,
    failure_groups,
    with_item_counts,
)
from batches.views import results_response
from batchsvc.admin import AuditAdmin, OwnedAdmin, pretty_json
from batchsvc.api.errors import ApiError

# What templates/admin/batches/progress_script.html needs to write statuses in words.
SCRIPT_CONTEXT = {"status_words": STATUS_WORDS}


def plural(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"


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
        "failures",
        "retries",
        "source_name",
        "options_json",
        "error",
        "downloads",
        ("created_at", "live_started", "live_finished", "updated_at"),
    ]
    readonly_fields = [
        name for row in fields for name in (row if isinstance(row, tuple) else (row,))
    ]

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if obj is not None and not reports_usage(obj.processor):
            fields.remove("usage")  # no tokens to show: echo and http answer none
        return fields

    def get_object(self, request, object_id, from_field=None):
        # Its counters exact, as the API's detail answers them: the page starts from
        # the figures its script then keeps up to date.
        batch = super().get_object(request, object_id, from_field)
        return None if batch is None else with_item_counts(batch)

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
                    f"Batch {batch} queued with {plural(batch.total_items, 'item', 'items')}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:batches_batch_change", args=[batch.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": "Add batch",
            "opts": self.opts,
            "form": form,
            "preview_url": reverse("batch-list") + "?dry_run=true",
            **SCRIPT_CONTEXT,
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
        return live(batch, "status", batch.status, kind="status")

    @admin.display(description="started at")
    def live_started(self, batch):
        return live(batch, "started_at", batch.started_at, kind="time")

    @admin.display(description="finished at")
    def live_finished(self, batch):
        return live(batch, "finished_at", batch.finished_at, kind="time")

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
            "{} items/min over its processing time, {} over the last minute; "
            "{} processing; {} left",
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
            else f"— (no price is configured for {usage['model'] or 'this processor'})",
        )

    @admin.display(description="failures by cause")
    def failures(self, batch):
        """Its failed items grouped by cause, each group with a button that retries
        it (the buttons submit the page's retry form, outside the change form)."""
        groups = failure_groups(batch)
        if not groups:
            return "—"
        retryable = batch.status in RETRYABLE_BATCH
        rows = format_html_join(
            "",
            '<tr><td>{}</td><td>{}</td><td><a href="{}">item</a></td><td>{}</td><td>{}</td>'
            "<td>{}</td></tr>",
            (
                (
                    group["count"],
                    group["error"],
                    reverse("admin:batches_interaction_change", args=[group["example_item"]]),
                    shown(group["first_seen"], "time"),
                    shown(group["last_seen"], "time"),
                    _retry_group_button(group) if retryable else "",
                )
                for group in groups
            ),
        )
        return format_html(
            '<table class="batch-failure-groups"><thead><tr><th>items</th><th>error</th>'
            "<th>example</th><th>first seen</th><th>last seen</th><th></th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="retries")
    def retries(self, batch):
        attempts = batch_attempts(batch)
        if not attempts:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            "{}: {} queued again by {}{}",
            (
                (
                    shown(attempt["at"], "time"),
                    plural(attempt["requeued"], "failed item", "failed items"),
                    attempt["by"] or "someone since deleted",
                    f" (one failure group, {attempt['group']})" if attempt["group"] else "",
                )
                for attempt in attempts
            ),
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

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {**(extra_context or {}), **SCRIPT_CONTEXT})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        batch = self.get_object(request, object_id)
        extra_context = {**(extra_context or {}), **SCRIPT_CONTEXT}
        if batch is not None:
            extra_context.update(items_context(batch, request.GET))
            may_operate = self.has_operate_permission(request)
            extra_context["can_cancel"] = may_operate and batch.is_active
            extra_context["can_retry"] = may_operate and batch.status in RETRYABLE_BATCH
        return super().change_view(request, object_id, form_url, extra_context)

    # Actions: the same services as the API --------------------------------------

    def has_operate_permission(self, request, obj=None) -> bool:
        """Cancel and retry change a batch, so they need the change permission on
        batches; has_change_permission says False to everyone (AuditAdmin: no field
        is edited here), so the user's permission is asked directly."""
        codename = get_permission_codename("change", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    def _each(self, request, queryset, service) -> list:
        """``service`` on each batch; what each answered, a warning for each refusal."""
        answers = []
        for batch in queryset:
            try:
                answers.append(service(batch))
            except ApiError as exc:
                self.message_user(request, f"{batch}: {exc.message}", messages.WARNING)
        return answers

    @admin.action(description="Cancel selected batches", permissions=["operate"])
    def cancel(self, request, queryset):
        def cancel(batch):
            services.batch_cancel(batch=batch)
            return batch.status

        ended = self._each(request, queryset, cancel)
        if ended:
            still = ended.count("cancelling")
            text = f"{plural(len(ended), 'batch', 'batches')} cancelled"
            if still:
                text += f"; {still} will be once the items running now end"
            self.message_user(request, text + ".", messages.SUCCESS)

    @admin.action(description="Retry the failed items of selected batches", permissions=["operate"])
    def retry_failed(self, request, queryset, group: str = ""):
        def retry(batch):
            return services.batch_retry_failed(batch=batch, group=group, by=request.user)

        retried = self._each(request, queryset, retry)
        if retried:
            which = f"of group {group} " if group else ""
            self.message_user(
                request,
                f"{plural(sum(retried), 'failed item', 'failed items')} {which}of "
                f"{plural(len(retried), 'batch', 'batches')} queued again.",
                messages.SUCCESS,
            )

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
        group = request.POST.get("group", "")
        return self._object_action(
            request, object_id, lambda r, q: self.retry_failed(r, q, group=group)
        )

    def _object_action(self, request, object_id, action):
        batch = get_object_or_404(Batch, pk=object_id)
        if not self.has_operate_permission(request, batch):
            raise PermissionDenied
        if request.method == "POST":
            action(request, Batch.objects.filter(pk=batch.pk))
        return HttpResponseRedirect(reverse("admin:batches_batch_change", args=[batch.pk]))


def _retry_group_button(group: dict) -> str:
    # form="batch-retry-group": the form is in the page's object tools, as a form may
    # not sit inside the change form.
    return format_html(
        '<button type="submit" form="batch-retry-group" name="group" value="{}" '
        'class="batch-retry-group">retry this group ({})</button>',
        group["key"],
        group["count"],
    )
