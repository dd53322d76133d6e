"""Log lines in the cross-resource batch GET, by id: every authenticated user may
read every run's lines, as in the tailing endpoint."""

from batchsvc.resources import register
from setuplogs.models import LogEntry
from setuplogs.serializers import LogEntryDetailSerializer

register(
    "log_entries",
    serializer_class=LogEntryDetailSerializer,
    visible_to=lambda user: LogEntry.objects.select_related("run"),
)
