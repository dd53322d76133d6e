"""Admin helpers shared by the apps."""

import json

from django.utils.html import format_html


def pretty_json(value) -> str:
    if value is None:
        return "—"
    text = json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False)
    return format_html('<pre class="batchsvc-json">{}</pre>', text)


class AuditAdmin:
    """Mixin for rows written by the API: visible and deletable, never edited here."""

    # Their get_absolute_url is the API's JSON, not a page for a person.
    view_on_site = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class OwnedAdmin:
    """Mixin for models with an owner: the admin starts from ``visible_to`` as the
    API does, and every list shows the owner and filters by it."""

    def get_queryset(self, request):
        return super().get_queryset(request).visible_to(request.user)
