from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from batchsvc.admin import AuditAdmin, OwnedAdmin, pretty_json
from batchsvc.api.errors import ApiError
from webhooks import services
from webhooks.models import Attempt, Delivery, Endpoint, EventType
from webhooks.signing import new_secret


class EndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=EventType.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Endpoint
        fields = ["url", "events", "is_active"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        if self.instance.pk and url == self.instance.url:
            return url  # unchanged: disabling an endpoint needs no DNS answer
        return self._checked(services.url_checked, url)

    def clean_events(self):
        return self._checked(services.events_checked, list(self.cleaned_data["events"]))

    @staticmethod
    def _checked(check, value):
        # The API's own rule and sentence.
        try:
            return check(value)
        except ApiError as exc:
            raise forms.ValidationError(exc.message) from None


@admin.register(Endpoint)
class EndpointAdmin(OwnedAdmin, admin.ModelAdmin):
    form = EndpointForm
    list_display = ["url", "owner", "event_list", "is_active", "created"]
    list_filter = ["is_active", "owner"]
    list_select_related = ["owner"]
    search_fields = ["url", "owner__username"]
    readonly_fields = ["owner", "disabled_reason", "delivery_list", "created_at", "updated_at"]
    actions = ["rotate_secret"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["url", "events"]
        return ["owner", "url", "events", "is_active", "disabled_reason", "delivery_list"]

    @admin.display(description="events")
    def event_list(self, endpoint):
        return ", ".join(endpoint.events)

    @admin.display(description="created", ordering="created_at")
    def created(self, endpoint):
        return timezone.localtime(endpoint.created_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="deliveries")
    def delivery_list(self, endpoint):
        url = reverse("admin:webhooks_delivery_changelist") + f"?endpoint__id__exact={endpoint.pk}"
        return format_html('<a href="{}">{} deliveries</a>', url, endpoint.deliveries.count())

    def save_model(self, request, obj, form, change):
        if not change:
            obj.owner, obj.secret = request.user, new_secret()
        elif "is_active" in form.changed_data and not obj.is_active:
            obj.save()
            services.endpoint_disable(
                endpoint_id=obj.pk, reason=f"Disabled in the admin by {request.user}."
            )
            return
        elif "is_active" in form.changed_data:
            obj.disabled_reason = ""
        super().save_model(request, obj, form, change)
        if not change:
            self._show_secret(request, obj)

    def _show_secret(self, request, endpoint):
        self.message_user(
            request,
            f"The secret of {endpoint.url}, shown this once: {endpoint.secret}",
            messages.WARNING,
        )

    @admin.action(description="Rotate the secret (the old one signs too for a while)")
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            self._show_secret(request, services.endpoint_rotate_secret(endpoint=endpoint))


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = ["number", "started_at", "duration_ms", "status_code", "answer", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="answer")
    def answer(self, attempt):
        return format_html("<code>{}</code>", attempt.response) if attempt.response else "—"


@admin.register(Delivery)
class DeliveryAdmin(OwnedAdmin, AuditAdmin, admin.ModelAdmin):
    list_display = [
        "event_type",
        "batch",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "created",
    ]
    list_filter = ["status", "event__type"]
    list_select_related = ["event", "endpoint"]
    search_fields = ["=event__batch__id", "endpoint__url"]
    show_full_result_count = False
    inlines = [AttemptInline]
    fields = [
        ("webhook_id", "event_type"),
        ("batch", "endpoint"),
        ("status", "attempts"),
        ("next_attempt_at", "retry_until", "delivered_at"),
        ("last_status_code", "last_error"),
        "payload",
        "created_at",
    ]
    readonly_fields = [
        name for row in fields for name in (row if isinstance(row, tuple) else (row,))
    ]
    actions = ["redeliver"]

    @admin.display(description="webhook-id")
    def webhook_id(self, delivery):
        return delivery.event.webhook_id

    @admin.display(description="event", ordering="event__type")
    def event_type(self, delivery):
        return delivery.event.type

    @admin.display(description="batch")
    def batch(self, delivery):
        url = reverse("admin:batches_batch_change", args=[delivery.event.batch_id])
        return format_html('<a href="{}">{}</a>', url, delivery.event.batch_id)

    @admin.display(description="created", ordering="created_at")
    def created(self, delivery):
        return timezone.localtime(delivery.created_at).strftime("%Y-%m-%d %H:%M:%S")

    @admin.display(description="payload")
    def payload(self, delivery):
        return pretty_json(delivery.event.payload)

    @admin.action(description="Redeliver selected deliveries")
    def redeliver(self, request, queryset):
        queued = 0
        for delivery in queryset:
            try:
                services.delivery_redeliver(delivery=delivery)
                queued += 1
            except ApiError as exc:
                self.message_user(request, f"{delivery}: {exc.message}", messages.WARNING)
        if queued:
            noun = "delivery" if queued == 1 else "deliveries"
            self.message_user(
                request, f"{queued} {noun} will be sent again shortly.", messages.SUCCESS
            )
