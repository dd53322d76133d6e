import django_filters

from traces.models import Run, RunStatus


class RunFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RunStatus.choices)
    start_time = django_filters.IsoDateTimeFromToRangeFilter(
        label="start_time range: start_time_after / start_time_before (ISO 8601)"
    )

    class Meta:
        model = Run
        fields = ["agent_name", "job_type", "status", "product", "parent_run_id", "start_time"]
