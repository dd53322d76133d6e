from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from traces.models import Run, TraceFile


@extend_schema_field({"type": ["object", "null"]})
class JSONObjectField(serializers.JSONField):
    """A JSON object, or null: what a run's metrics_json and context_json hold."""


def owner_field():
    return serializers.SlugRelatedField(slug_field="username", read_only=True)


class RunSerializer(serializers.ModelSerializer):
    owner = owner_field()
    metrics_json = JSONObjectField(read_only=True)
    context_json = JSONObjectField(read_only=True)

    class Meta:
        model = Run
        fields = [
            "event_id",
            "run_id",
            "owner",
            "parent_run_id",
            "agent_name",
            "job_type",
            "product",
            "git_repo",
            "git_branch",
            "git_commit",
            "status",
            "start_time",
            "end_time",
            "metrics_json",
            "context_json",
            "error_summary",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class TraceFileSerializer(serializers.ModelSerializer):
    owner = owner_field()
    run_id = serializers.CharField(read_only=True, allow_null=True)
    file_name = serializers.CharField(read_only=True)
    content_url = serializers.SerializerMethodField()

    class Meta:
        model = TraceFile
        fields = [
            "id",
            "owner",
            "path",
            "file_name",
            "size",
            "sha256",
            "run_id",
            "content_url",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_content_url(self, trace_file) -> str:
        return reverse("tracefile-content", kwargs={"pk": trace_file.pk})
