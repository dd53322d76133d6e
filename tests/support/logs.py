"""What the LogBatcher tests read back: a run's stored lines."""

from setuplogs.models import LogEntry


def messages(run_id) -> list[str]:
    return list(LogEntry.objects.filter(run__run_id=run_id).values_list("message", flat=True))
