"""Owners' quotas: an operator gives one owner limits of their own over the defaults."""

from django.conf import settings
from django.contrib import admin

from batches.models import OwnerQuota


@admin.register(OwnerQuota)
class OwnerQuotaAdmin(admin.ModelAdmin):
    list_display = ["owner", "running", "queued", "share"]
    list_select_related = ["owner"]
    search_fields = ["owner__username"]
    autocomplete_fields = ["owner"]

    @admin.display(description="items running at once")
    def running(self, quota):
        return _or_default(quota.running_items, settings.QUOTA_RUNNING_ITEMS)

    @admin.display(description="batches queued or running")
    def queued(self, quota):
        return _or_default(quota.queued_batches, settings.QUOTA_QUEUED_BATCHES)

    @admin.display(description="share of each provider's rate limits")
    def share(self, quota):
        share = quota.provider_share or settings.QUOTA_PROVIDER_SHARE
        text = f"{share:.0%}"
        return text if quota.provider_share else f"{text} (the default)"


def _or_default(value, default) -> str:
    if value is not None:
        return str(value)
    return "no limit (the default)" if default is None else f"{default} (the default)"
