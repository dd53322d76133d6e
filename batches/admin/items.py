"""The admin of batch items: read-only audit rows, and the batch page's items list."""

from django.contrib import admin
from django.core.paginator import Paginator
from django.template.defaultfilters import truncatechars

from batches.models import Batch, Interaction, InteractionStatus
from batches.processors.base import reports_usage
from batchsvc.admin import AuditAdmin, OwnedAdmin, pretty_json

ITEMS_PER_PAGE = 50


def items_context(batch: Batch, query) -> dict:
    """The batch page's items: one status (or all) a page at a time, with the count
    of each status (those with_item_counts read, with the page's other figures)."""
    status = query.get("items_status", "")
    items = batch.interactions.order_by("row_number")
    if status in InteractionStatus.values:
        items = items.filter(status=status)
    else:
        status = ""
    counts = batch.item_counts
    return {
        "items_page": Paginator(items, ITEMS_PER_PAGE).get_page(query.get("items")),
        "items_status": status,
        "items_counts": [(name, counts[name]) for name in InteractionStatus.values],
        "shows_tokens": reports_usage(batch.processor),
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

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if obj is not None and not reports_usage(obj.batch.processor):
            return [
                f for f in fields if f not in ("prompt_tokens", "completion_tokens", "total_tokens")
            ]
        return fields

    @admin.display(description="owner", ordering="batch__owner")
    def owner(self, item):
        return item.batch.owner

    @admin.display(description="question")
    def question(self, item):
        return truncatechars(str(item.input.get("question", "")), 80)

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
