from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from batches.models import Batch, Interaction
from batches.retention import batch_expires_at
from batches.selectors import (
    batch_attempts,
    batch_pace,
    batch_usage,
    batch_waiting_for,
    failure_groups,
    with_item_counts,
)
from batches.spreadsheets.rows import MAX_SKIPPED_LISTED


class PaceSerializer(serializers.Serializer):
    elapsed_seconds = serializers.FloatField(
        allow_null=True, help_text="since it started (until it ended)"
    )
    items_per_minute = serializers.FloatField(
        allow_null=True, help_text="items that ran per minute since it started"
    )
    items_per_minute_last_minute = serializers.FloatField(
        allow_null=True, help_text="the same over the last minute, while it is processing"
    )
    eta_seconds = serializers.IntegerField(
        allow_null=True, help_text="estimated time left, while it is processing"
    )


class WaitingSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(
        choices=["worker", "concurrency", "rate_limit", "quota"],
        help_text="worker: none is live, or all their threads are busy; concurrency: the "
        "batch runs as many conversations as its concurrency allows; rate_limit: its "
        "processor is paused until `until`; quota: its owner runs as many items as their "
        "quota allows",
    )
    message = serializers.CharField(help_text="the same, as a sentence")
    until = serializers.DateTimeField(allow_null=True, help_text="for rate_limit: until when")


class UsageSerializer(serializers.Serializer):
    prompt_tokens = serializers.IntegerField(help_text="summed over the items' answers")
    completion_tokens = serializers.IntegerField()
    total_tokens = serializers.IntegerField()
    model = serializers.CharField(allow_null=True, help_text="the model the batch asks for")
    estimated_cost = serializers.DecimalField(
        max_digits=20,
        decimal_places=6,
        allow_null=True,
        help_text="US dollars, from BATCH_MODEL_PRICES (null when it does not price the model)",
    )


class BatchSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    pace = serializers.SerializerMethodField(
        help_text="how fast the batch goes, over the time it was processing"
    )
    progress = serializers.IntegerField(
        read_only=True,
        help_text="0-100: whole percent of the items that ran (succeeded or failed). "
        "Cancelled items do not count, so a cancelled batch shows how far it got; 100 "
        "only when every item ran.",
    )
    ended_progress = serializers.IntegerField(
        read_only=True,
        help_text="0-100: whole percent of the items that have ended, ran or cancelled; "
        "100 once nothing is left to do. ended_progress - progress is the cancelled share.",
    )
    expires_at = serializers.SerializerMethodField(
        help_text="when the finished batch and its results will be deleted; null while it "
        "runs, or while finished batches are kept forever"
    )

    class Meta:
        model = Batch
        fields = [
            "id",
            "name",
            "owner",
            "processor",
            "options",
            "priority",
            "concurrency",
            "status",
            "progress",
            "ended_progress",
            "total_items",
            "processed_items",
            "failed_items",
            "cancelled_items",
            "pace",
            "skipped_count",
            "skipped_rows",
            "source_name",
            "columns",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "expires_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(PaceSerializer)
    def get_pace(self, batch) -> dict:
        return batch_pace(batch)

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_expires_at(self, batch) -> str | None:
        when = batch_expires_at(batch)
        return None if when is None else serializers.DateTimeField().to_representation(when)


class FailureGroupSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="the group's key, for retry-failed's group")
    error = serializers.CharField(
        help_text="the items' error, numbers, ids and quoted values folded"
    )
    count = serializers.IntegerField(help_text="failed items in the group")
    example_item = serializers.IntegerField(help_text="the id of one of them")
    first_seen = serializers.DateTimeField(allow_null=True)
    last_seen = serializers.DateTimeField(allow_null=True)


class AttemptSerializer(serializers.Serializer):
    at = serializers.DateTimeField(help_text="when the failed items were queued again")
    requeued = serializers.IntegerField(help_text="how many")
    group = serializers.CharField(help_text="the failure group retried (empty: all)")
    by = serializers.CharField(allow_null=True, help_text="who asked")


class ItemCountsSerializer(serializers.Serializer):
    pending = serializers.IntegerField()
    running = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class BatchDetailSerializer(BatchSerializer):
    """One batch: its counters exact (from its items as they are now, with their count
    per status), what it waits for, the tokens its items used, its failures grouped
    by cause and its retries (each a few queries when read, so not in lists)."""

    item_counts = serializers.SerializerMethodField(help_text="its items in each status")
    waiting_for = serializers.SerializerMethodField(
        help_text="why an active batch does not start more of its conversations now; "
        "null when it is not waiting"
    )
    usage = serializers.SerializerMethodField(help_text="tokens used and estimated cost")
    failure_groups = serializers.SerializerMethodField(
        help_text="its failed items grouped by cause, largest first"
    )
    attempts = serializers.SerializerMethodField(help_text="its retries, oldest first")

    class Meta(BatchSerializer.Meta):
        fields = [
            *BatchSerializer.Meta.fields,
            "item_counts",
            "waiting_for",
            "usage",
            "failure_groups",
            "attempts",
        ]
        read_only_fields = fields

    def to_representation(self, batch):
        return super().to_representation(with_item_counts(batch))

    @extend_schema_field(ItemCountsSerializer)
    def get_item_counts(self, batch) -> dict:
        return batch.item_counts

    @extend_schema_field(FailureGroupSerializer(many=True))
    def get_failure_groups(self, batch) -> list:
        return FailureGroupSerializer(failure_groups(batch), many=True).data

    @extend_schema_field(AttemptSerializer(many=True))
    def get_attempts(self, batch) -> list:
        return AttemptSerializer(batch_attempts(batch), many=True).data

    @extend_schema_field(WaitingSerializer(allow_null=True))
    def get_waiting_for(self, batch) -> dict | None:
        waiting = batch_waiting_for(batch)
        return None if waiting is None else WaitingSerializer(waiting).data

    @extend_schema_field(UsageSerializer)
    def get_usage(self, batch) -> dict:
        return UsageSerializer(batch_usage(batch)).data


class SkippedRowSerializer(serializers.Serializer):
    row = serializers.IntegerField(help_text="row number in the file (header = 1)")
    error = serializers.CharField(help_text='why it was skipped: "no question"')


class BatchCreatedSerializer(serializers.Serializer):
    batch_id = serializers.UUIDField(source="id")
    status = serializers.CharField()
    total_items = serializers.IntegerField(help_text="the rows with a question")
    skipped_count = serializers.IntegerField(help_text="the rows without one, skipped")
    skipped_rows = SkippedRowSerializer(
        many=True, help_text=f"the first {MAX_SKIPPED_LISTED} skipped rows"
    )


class InteractionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Interaction
        fields = [
            "id",
            "row_number",
            "chat_id",
            "input",
            "output",
            "status",
            "error",
            "attempts",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class InteractionDetailSerializer(InteractionSerializer):
    """An item on its own (batch GET): with its batch's id too."""

    class Meta(InteractionSerializer.Meta):
        fields = ["id", "batch_id", *InteractionSerializer.Meta.fields[1:]]  # [0] is "id"
        read_only_fields = fields
