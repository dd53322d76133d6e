import msgspec
from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from batchsvc.bulk import describe, read_items
from batchsvc.errors import ApiError
from batchsvc.fields import FieldSelectionMixin
from batchsvc.openapi import envelope_schema, json_body, schema_ref
from batchsvc.parsers import BulkJSONParser
from batchsvc.throttling import ScopedThrottle
from batchsvc.views import query_flag
from traces import services
from traces.filters import RunFilter
from traces.models import Run
from traces.schemas import RunBatchResult, RunChanges, RunIn
from traces.serializers import RunSerializer

BATCH_FLAGS = [
    OpenApiParameter(
        "dry_run", OpenApiTypes.BOOL, description="Validate and classify; store nothing."
    ),
    OpenApiParameter(
        "errors_only",
        OpenApiTypes.BOOL,
        description="List only failed items in `runs`; the counts still cover every item.",
    ),
]
EXAMPLE_RUN = {
    "event_id": "0b7b6f3e-3f5e-4a53-9d2c-6d1c1f0a9b11",
    "run_id": "nightly-2026-01-28-001",
    "agent_name": "launch.orchestrator",
    "job_type": "launch",
    "start_time": "2026-01-28T10:30:00Z",
    "status": "running",
    "metrics_json": {"pages": 12},
}


class RunViewSet(
    FieldSelectionMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Telemetry runs: one at a time here, many at a time with the batch endpoints."""

    queryset = Run.objects.all()
    serializer_class = RunSerializer
    lookup_field = "run_id"
    lookup_value_regex = "[^/]+"
    filterset_class = RunFilter
    ordering_fields = ["start_time", "end_time", "created_at", "updated_at"]
    ordering = ["-start_time"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    @extend_schema(
        request=json_body(schema_ref(RunIn)),
        responses={201: RunSerializer, 200: RunSerializer},
        description="Store one run: 201, or 200 with the stored run when its event_id exists.",
    )
    def create(self, request, *args, **kwargs):
        result = services.runs_ingest(items=[request.data], atomic=True)
        if result.failed:
            raise ApiError(f"Run not stored: {result.errors[0]['error']}.")
        run = Run.objects.get(event_id=request.data["event_id"])
        created = result.items[0]["result"] == services.CREATED
        return Response(
            self.get_serializer(run).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(request=json_body(schema_ref(RunChanges)), responses=RunSerializer)
    def partial_update(self, request, *args, **kwargs):
        try:
            changes = msgspec.convert(request.data, RunChanges)
        except msgspec.ValidationError as exc:
            raise ApiError(f"Run not changed: {describe(exc)}.") from None
        run = services.run_update(run=self.get_object(), changes=changes)
        return Response(self.get_serializer(run).data)


class RunBatchView(APIView):
    """Many runs in one request, leniently or all-or-nothing (``atomic``)."""

    atomic = False
    parser_classes = [BulkJSONParser]
    throttle_classes = [ScopedThrottle]
    throttle_scope = "batch"

    @extend_schema(
        request=json_body(envelope_schema("runs", RunIn, settings.RUNS_BATCH_MAX)),
        responses={
            200: schema_ref(RunBatchResult),
            201: schema_ref(RunBatchResult),
            400: schema_ref(RunBatchResult),
        },
        parameters=BATCH_FLAGS,
        examples=[
            OpenApiExample("Two runs", value={"runs": [EXAMPLE_RUN]}, request_only=True),
        ],
    )
    def post(self, request):
        dry_run, errors_only = query_flag(request, "dry_run"), query_flag(request, "errors_only")
        items = read_items(request.data, "runs", RunIn, settings.RUNS_BATCH_MAX)
        result = services.runs_ingest(items=items, atomic=self.atomic, dry_run=dry_run)
        return Response(result.as_dict(errors_only=errors_only), status=self._status(result))

    def _status(self, result: services.IngestResult) -> int:
        if result.failed:
            return status.HTTP_400_BAD_REQUEST if self.atomic else status.HTTP_200_OK
        return status.HTTP_200_OK if result.dry_run else status.HTTP_201_CREATED
