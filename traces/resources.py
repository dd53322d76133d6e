"""Runs and trace files in the cross-resource batch GET: a user sees their own,
staff see all; anyone else's answers 404, exactly like a missing one."""

from batchsvc.api.resources import register
from traces.models import Run, TraceFile
from traces.schemas import Name
from traces.serializers import RunSerializer, TraceFileSerializer

register(
    "runs",
    serializer_class=RunSerializer,
    # The owners in a query of their own, not joined: SQLite without statistics (no
    # ANALYZE yet) answers the join by reading every run of the owner, the
    # (owner, run_id) index unused.
    visible_to=lambda user: Run.objects.visible_to(user).prefetch_related("owner"),
    lookup_field="run_id",
    id_type=Name,
)
register(
    "trace_files",
    serializer_class=TraceFileSerializer,
    visible_to=lambda user: TraceFile.objects.visible_to(user).select_related("owner"),
)
