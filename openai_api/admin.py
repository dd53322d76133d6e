from django.contrib import admin

from batchsvc.admin import AuditAdmin, OwnedAdmin
from openai_api.models import File


@admin.register(File)
class FileAdmin(OwnedAdmin, AuditAdmin, admin.ModelAdmin):
    """Input files as uploaded, and batches' result files: read and delete only."""

    list_display = ("filename", "purpose", "bytes", "owner", "batch", "created_at")
    list_select_related = ("owner", "batch")
    list_filter = ("purpose",)
    search_fields = ("filename", "owner__username")
    readonly_fields = [field.name for field in File._meta.fields]
