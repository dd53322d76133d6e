"""Runs in the cross-resource batch GET: every authenticated user sees every run."""

from batchsvc.resources import register
from traces.models import Run
from traces.schemas import Name
from traces.serializers import RunSerializer

register(
    "runs",
    serializer_class=RunSerializer,
    visible_to=lambda user: Run.objects.all(),
    lookup_field="run_id",
    id_type=Name,
)
