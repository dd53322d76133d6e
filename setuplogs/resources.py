"""Log lines in the cross-resource batch GET, by id: a user reads the lines of
their own runs, staff read all; anyone else's answer 404, like missing ones."""

from batchsvc.api.resources import register
from setuplogs.models import LogEntry
from setuplogs.serializers import LogEntryDetailSerializer

register(
    "log_entries",
    serializer_class=LogEntryDetailSerializer,
    visible_to=lambda user: LogEntry.objects.visible_to(user).select_related("run"),
)
