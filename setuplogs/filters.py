import django_filters
from django import forms
from drf_spectacular.utils import extend_schema_field

from setuplogs.models import LogEntry, LogLevel
from setuplogs.schemas import LEVEL_ALIASES, LEVELS_TEXT, normalize_level


class LevelsField(forms.CharField):
    """A comma-separated list of levels, in any accepted spelling."""

    def to_python(self, value):
        value = super().to_python(value)
        if not value:
            return []
        try:
            return [normalize_level(part.strip()) for part in value.split(",")]
        except ValueError as exc:
            # The sentence quotes the value sent: a parameter, never part of the
            # template, which whoever shows the error may %-format.
            raise forms.ValidationError("%(problem)s", params={"problem": str(exc)}) from None


_LEVEL = "|".join(LEVEL_ALIASES)


# Documented as the lower-case spellings, comma-separated (any case is taken).
@extend_schema_field({"type": "string", "pattern": rf"^({_LEVEL})(,({_LEVEL}))*$"})
class LevelsFilter(django_filters.Filter):
    field_class = LevelsField


class IntegerFilter(django_filters.Filter):
    field_class = forms.IntegerField


def integer_filter(*, min_value: int, max_value: int, **kwargs) -> IntegerFilter:
    """A whole-number filter, documented with its bounds."""
    schema = {"type": "integer", "minimum": min_value, "maximum": max_value}
    return extend_schema_field(schema)(
        IntegerFilter(min_value=min_value, max_value=max_value, **kwargs)
    )


TAIL_MAX = 1_000_000


class LogEntryFilter(django_filters.FilterSet):
    after = integer_filter(
        field_name="seq",
        lookup_expr="gt",
        min_value=0,
        max_value=2**63 - 1,  # a bigint: anything larger would fail in the database
        label="Only lines with a seq greater than this (tailing: the last seq you have).",
    )
    level = LevelsFilter(
        field_name="level",
        lookup_expr="in",
        label=f"Only these levels, comma-separated: {LEVELS_TEXT}.",
    )
    min_level = django_filters.ChoiceFilter(
        choices=LogLevel.choices,
        method="filter_min_level",
        label="Only lines at this level or more severe.",
    )

    # Declared last: it counts the lines the other filters let through.
    tail = integer_filter(
        min_value=1,
        max_value=TAIL_MAX,
        method="filter_tail",
        label="Only the last N lines (of those the other filters select).",
    )

    class Meta:
        model = LogEntry
        fields = ["after", "level", "min_level", "tail"]

    def filter_min_level(self, queryset, name, value):
        return queryset.filter(level__in=LogLevel.at_least(value))

    def filter_tail(self, queryset, name, value):
        return queryset.last_lines(value)
