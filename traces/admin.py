from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from batchsvc.admin import AuditAdmin, OwnedAdmin, pretty_json
from setuplogs.selectors import log_text
from traces.files import trace_files_preview
from traces.models import Run, TraceFile


@admin.register(Run)
class RunAdmin(OwnedAdmin, AuditAdmin, admin.ModelAdmin):
    list_display = [
        "run_id",
        "owner",
        "agent_name",
        "job_type",
        "status",
        "start_time",
        "end_time",
    ]
    list_filter = ["status", "owner", "job_type", "product"]
    list_select_related = ["owner"]
    search_fields = ["=run_id", "=event_id", "agent_name", "=owner__username"]
    date_hierarchy = "start_time"
    show_full_result_count = False
    list_per_page = 100
    fields = [
        ("run_id", "owner"),
        "event_id",
        "parent",
        "children",
        "agent_name",
        "job_type",
        "product",
        ("git_repo", "git_branch", "git_commit"),
        "status",
        ("start_time", "end_time"),
        "metrics",
        "context",
        "error_summary",
        ("created_at", "updated_at"),
        "traces",
    ]
    readonly_fields = [
        name for row in fields for name in (row if isinstance(row, tuple) else (row,))
    ]

    @admin.display(description="parent run")
    def parent(self, run):
        if not run.parent_run_id:
            return "—"
        parent = Run.objects.parent_of(run).only("pk").first()
        if parent is None:
            return format_html("{} <em>(not received yet)</em>", run.parent_run_id)
        return format_html('<a href="{}">{}</a>', _change_url(parent), run.parent_run_id)

    @admin.display(description="child runs")
    def children(self, run):
        children = Run.objects.children_of(run).only("pk", "run_id")[:100]
        if not children:
            return "—"
        return format_html_join(
            ", ", '<a href="{}">{}</a>', ((_change_url(c), c.run_id) for c in children)
        )

    def get_urls(self):
        log = path(
            "<int:object_id>/log.txt",
            self.admin_site.admin_view(self.log_view),
            name="traces_run_log",
        )
        return [log, *super().get_urls()]

    def log_view(self, request, object_id):
        """The run's whole log as a text download."""
        run = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        response = StreamingHttpResponse(log_text(run), content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{run.run_id}.log"'
        return response

    @admin.display(description="trace files")
    def traces(self, run):
        files = TraceFile.objects.filter(owner_id=run.owner_id, run_id=run.run_id)
        shown = files.order_by("path").only("pk", "path")[:TRACES_LISTED]
        if not shown:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{}</a> (<a href="{}">download</a>)',
            (
                (_trace_change_url(f), f.path, reverse("tracefile-content", args=[f.pk]))
                for f in shown
            ),
        )

    @admin.display(description="metrics")
    def metrics(self, run):
        return pretty_json(run.metrics_json)

    @admin.display(description="context")
    def context(self, run):
        return pretty_json(run.context_json)


def _change_url(run: Run) -> str:
    return reverse("admin:traces_run_change", args=[run.pk])


def _trace_change_url(trace_file: TraceFile) -> str:
    return reverse("admin:traces_tracefile_change", args=[trace_file.pk])


TRACES_LISTED = 200


@admin.register(TraceFile)
class TraceFileAdmin(OwnedAdmin, AuditAdmin, admin.ModelAdmin):
    list_display = ["path", "owner", "size", "run_link", "updated_at"]
    list_filter = ["owner"]
    search_fields = ["path", "=run_id", "=owner__username"]
    list_select_related = ["owner"]
    show_full_result_count = False
    list_per_page = 100
    fields = [
        ("path", "owner"),
        "run_link",
        ("size", "download"),
        "sha256",
        ("created_at", "updated_at"),
        "content",
    ]
    readonly_fields = [
        "path",
        "owner",
        "run_link",
        "size",
        "download",
        "sha256",
        "created_at",
        "updated_at",
        "content",
    ]

    def get_queryset(self, request):
        # The run's pk in the same query, for the links (run_id names a run of the same owner).
        runs = Run.objects.filter(owner=OuterRef("owner"), run_id=OuterRef("run_id"))
        return super().get_queryset(request).annotate(run_pk=Subquery(runs.values("pk")[:1]))

    def has_delete_permission(self, request, obj=None):
        # A row mirrors a file in the storage: deleting one alone would lie.
        return False

    @admin.display(description="run", ordering="run_id")
    def run_link(self, trace_file):
        if not trace_file.run_id:
            return "—"
        if trace_file.run_pk is None:  # written before its run was uploaded
            return f"{trace_file.run_id} (not stored yet)"
        url = reverse("admin:traces_run_change", args=[trace_file.run_pk])
        return format_html('<a href="{}">{}</a>', url, trace_file.run_id)

    @admin.display(description="file")
    def download(self, trace_file):
        url = reverse("tracefile-content", args=[trace_file.pk])
        return format_html('<a href="{}" download id="trace-download">Download</a>', url)

    @admin.display(description="content")
    def content(self, trace_file):
        return trace_files_preview(trace_file=trace_file)
