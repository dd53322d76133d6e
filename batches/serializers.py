from rest_framework import serializers

from batches.models import Batch, Interaction
from batches.parsing import MAX_SKIPPED_LISTED


class BatchSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    progress = serializers.IntegerField(read_only=True, help_text="0-100")

    class Meta:
        model = Batch
        fields = [
            "id",
            "name",
            "owner",
            "processor",
            "options",
            "status",
            "progress",
            "total_items",
            "processed_items",
            "failed_items",
            "cancelled_items",
            "skipped_count",
            "skipped_rows",
            "source_name",
            "columns",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "updated_at",
        ]
        read_only_fields = fields


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


class BatchUploadSerializer(serializers.Serializer):
    """The multipart form of POST /batches/ (for the schema; the service validates)."""

    file = serializers.FileField(help_text=".csv or .xlsx with a question column")
    name = serializers.CharField(required=False)
    processor = serializers.CharField(required=False, default="echo")
    options = serializers.CharField(required=False, help_text="a JSON object, as text")
    dry_run = serializers.BooleanField(required=False)


class InteractionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Interaction
        fields = [
            "row_number",
            "chat_id",
            "input",
            "output",
            "status",
            "error",
            "attempts",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class InteractionDetailSerializer(InteractionSerializer):
    """An item on its own (batch GET): with its id and its batch's."""

    class Meta(InteractionSerializer.Meta):
        fields = ["id", "batch_id", *InteractionSerializer.Meta.fields]
        read_only_fields = fields
