from rest_framework import serializers

from setuplogs.models import LogEntry


class LogEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = LogEntry
        fields = ["seq", "timestamp", "level", "message", "client_id", "received_at"]
        read_only_fields = fields
