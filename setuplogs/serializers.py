from rest_framework import serializers

from setuplogs.models import LogEntry


class LogEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = LogEntry
        fields = ["seq", "timestamp", "level", "message", "client_id", "received_at"]
        read_only_fields = fields


class LogEntryDetailSerializer(LogEntrySerializer):
    """A line on its own (batch GET): with its id and the run it belongs to."""

    run_id = serializers.CharField(source="run.run_id", read_only=True)

    class Meta(LogEntrySerializer.Meta):
        fields = ["id", "run_id", *LogEntrySerializer.Meta.fields]
        read_only_fields = fields
