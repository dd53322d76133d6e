import django_filters

from traces.models import Run, RunStatus, TraceFile


def owner_filter():
    return django_filters.CharFilter(field_name="owner__username", label="owner's username")


class RunFilter(django_filters.FilterSet):
    owner = owner_filter()
    status = django_filters.ChoiceFilter(choices=RunStatus.choices)
    start_time = django_filters.IsoDateTimeFromToRangeFilter(
        label="start_time range: start_time_after / start_time_before (ISO 8601)"
    )

    class Meta:
        model = Run
        fields = [
            "owner",
            "agent_name",
            "job_type",
            "status",
            "product",
            "parent_run_id",
            "start_time",
        ]


class TraceFileFilter(django_filters.FilterSet):
    owner = owner_filter()
    run_id = django_filters.CharFilter(method="filter_run_id", label="run_id")
    path_prefix = django_filters.CharFilter(
        method="filter_path_prefix", label="path starts with (e.g. nightly/2026-01-28/)"
    )

    class Meta:
        model = TraceFile
        fields = ["owner", "run_id", "path_prefix"]

    def filter_run_id(self, queryset, name, value):
        return queryset.for_run(value)

    def filter_path_prefix(self, queryset, name, value):
        return queryset.under(value)
