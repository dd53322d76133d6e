from rest_framework import serializers

from traces.models import Run


class RunSerializer(serializers.ModelSerializer):
    class Meta:
        model = Run
        fields = [
            "event_id",
            "run_id",
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
