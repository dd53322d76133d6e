from django.contrib import admin
from django.template.defaultfilters import truncatechars

from batchsvc.admin import AuditAdmin, OwnedAdmin
from setuplogs.models import LogEntry


@admin.register(LogEntry)
class LogEntryAdmin(OwnedAdmin, AuditAdmin, admin.ModelAdmin):
    """Every run's lines; a run's own page shows and follows its log."""

    list_display = ["run", "owner", "seq", "level", "timestamp", "short_message"]
    list_filter = ["level", ("run__owner", admin.RelatedFieldListFilter)]
    search_fields = ["=run__run_id", "=client_id", "=run__owner__username"]
    list_select_related = ["run__owner"]
    show_full_result_count = False
    list_per_page = 200
    raw_id_fields = ["run"]

    @admin.display(description="owner", ordering="run__owner")
    def owner(self, entry):
        return entry.run.owner

    @admin.display(description="message")
    def short_message(self, entry):
        return truncatechars(entry.message, 120)

    def has_delete_permission(self, request, obj=None):
        # Log lines go with their run; deleting single lines would punch holes in it.
        return False
