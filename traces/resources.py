"""Runs and trace files in the cross-resource batch GET: every authenticated user
sees every run and every trace file, as in their list endpoints."""

from batchsvc.resources import register
from traces.models import Run, TraceFile
from traces.schemas import Name
from traces.serializers import RunSerializer, TraceFileSerializer

register(
    "runs",
    serializer_class=RunSerializer,
    visible_to=lambda user: Run.objects.all(),
    lookup_field="run_id",
    id_type=Name,
)
register(
    "trace_files",
    serializer_class=TraceFileSerializer,
    visible_to=lambda user: TraceFile.objects.all(),
)
