from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from webhooks.models import URL_MAX, Attempt, Delivery, Endpoint, EventType


class EndpointInSerializer(serializers.Serializer):
    """What POST /webhooks takes (checked by webhooks.services, which says what is wrong)."""

    url = serializers.CharField(
        max_length=URL_MAX, help_text="http or https, resolving to public addresses"
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.values),
        min_length=1,
        help_text="the event types to send it",
    )


class EndpointSerializer(serializers.ModelSerializer):
    enabled = serializers.BooleanField(source="is_active", read_only=True)
    previous_secret_expires_at = serializers.SerializerMethodField(
        help_text="while a rotated secret still signs deliveries too: until when; else null"
    )

    class Meta:
        model = Endpoint
        fields = [
            "id",
            "url",
            "events",
            "enabled",
            "disabled_reason",
            "previous_secret_expires_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_previous_secret_expires_at(self, endpoint):
        until = endpoint.previous_secret_until
        return until if until and until > timezone.now() else None


class EndpointWithSecretSerializer(EndpointSerializer):
    """An endpoint just created or rotated: its secret, shown this once."""

    secret = serializers.CharField(help_text="whsec_...: keep it, it is not shown again")

    class Meta(EndpointSerializer.Meta):
        fields = [*EndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = Attempt
        fields = ["number", "started_at", "duration_ms", "status_code", "error"]
        read_only_fields = fields


class DeliverySerializer(serializers.ModelSerializer):
    webhook_id = serializers.CharField(source="event.webhook_id", read_only=True)
    event_type = serializers.CharField(source="event.type", read_only=True)
    batch_id = serializers.UUIDField(source="event.batch_id", read_only=True)
    attempt_history = DeliveryAttemptSerializer(source="attempt_set", many=True, read_only=True)

    class Meta:
        model = Delivery
        fields = [
            "id",
            "webhook_id",
            "event_type",
            "batch_id",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "delivered_at",
            "created_at",
            "attempt_history",
        ]
        read_only_fields = fields
