from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.response import Response
from rest_framework.views import APIView

from batchsvc.api.bulk import read_envelope
from batchsvc.api.fields import FieldSelectionMixin
from batchsvc.api.filters import FilterBackend
from batchsvc.api.openapi import envelope_schema, json_body, schema_ref
from batchsvc.api.pagination import CursorPagination
from batchsvc.api.parsers import BulkJSONParser, RawJSONParser, json_body_of
from batchsvc.api.throttling import ScopedThrottle
from batchsvc.ops import metrics
from setuplogs import services
from setuplogs.filters import LogEntryFilter
from setuplogs.models import LogEntry
from setuplogs.schemas import LogBatch, LogBatchResult, LogLineIn
from setuplogs.selectors import run_for_logs
from setuplogs.serializers import LogEntrySerializer
from traces.schemas import RUN_ID_IN_PATH

EXAMPLE_LINE = {
    "timestamp": "2026-01-28T10:30:45.123Z",
    "level": "info",
    "message": "Creating worktree for job 1234",
    "client_id": "5f0c3a9e6b1d4c2f8e7a0b1c2d3e4f50",
}


def batch_schema() -> dict:
    schema = envelope_schema("logs", LogLineIn, settings.LOGS_BATCH_MAX)
    schema["properties"]["dropped"] = {
        "type": "integer",
        "minimum": 0,
        "description": "Lines the client dropped since its last successful batch; "
        "recorded on the run as a warning line.",
    }
    return schema


RUN_ID_PARAMETER = OpenApiParameter("run_id", RUN_ID_IN_PATH, OpenApiParameter.PATH)
OWNER_PARAMETER = OpenApiParameter(
    "owner",
    str,
    description="Staff only: whose run, by username, when several owners use the run_id.",
)


class LinePagination(CursorPagination):
    ordering = "seq"


class SetupLogsView(FieldSelectionMixin, generics.ListAPIView):
    """A run's log lines: read them in seq order (GET), append many (POST)."""

    serializer_class = LogEntrySerializer
    pagination_class = LinePagination
    filter_backends = [FilterBackend]  # the order is the seq's, always
    filterset_class = LogEntryFilter
    parser_classes = [BulkJSONParser]
    throttle_scope = "batch"

    def get_throttles(self):
        # Appends are batch writes; tailing readers poll and are not throttled here.
        return [ScopedThrottle()] if self.request.method == "POST" else []

    @extend_schema(parameters=[RUN_ID_PARAMETER, OWNER_PARAMETER])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def query_parameters(self) -> list[str]:
        # ?owner= chooses the run (run_for_logs), beside the list's own parameters.
        return [*super().query_parameters(), "owner"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, no request
            return LogEntry.objects.none()
        return LogEntry.objects.of_run(
            run_for_logs(self.request, self.kwargs["run_id"], write=False)
        )

    @extend_schema(
        parameters=[RUN_ID_PARAMETER],
        request=json_body(batch_schema()),
        responses={200: schema_ref(LogBatchResult)},
        examples=[
            OpenApiExample("Two lines", value={"logs": [EXAMPLE_LINE]}, request_only=True),
        ],
        description="Append up to LOGS_BATCH_MAX lines in one transaction. Invalid lines "
        "are skipped and listed in `skipped`; lines whose client_id the run holds already "
        "are counted in `duplicates`.",
    )
    def post(self, request, run_id):
        run = run_for_logs(request, run_id, write=True)
        body = read_envelope(
            json_body_of(request),
            "logs",
            settings.LOGS_BATCH_MAX,
            schema=LogBatch,
            refused="Log lines not stored",
        )
        result = services.log_lines_append(run=run, lines=body.logs, dropped=body.dropped)
        counts = {
            "created": result.added,
            "existing": result.duplicates,
            "failed": len(result.skipped),
        }
        metrics.observe_bulk(resource="log_lines", size=len(body.logs), counts=counts)
        return Response(result.as_dict(), status=status.HTTP_200_OK)


class SetupLogView(APIView):
    """Append one line (POST, or PATCH as older agents do)."""

    parser_classes = [RawJSONParser]

    @extend_schema(
        parameters=[RUN_ID_PARAMETER],
        request=json_body(schema_ref(LogLineIn)),
        responses={201: LogEntrySerializer, 200: LogEntrySerializer},
        description="Store one line: 201, or 200 with the stored line when its client_id "
        "is stored already.",
    )
    def post(self, request, run_id):
        entry, created = services.log_line_append(
            run=run_for_logs(request, run_id, write=True), raw=json_body_of(request)
        )
        return Response(
            LogEntrySerializer(entry).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        parameters=[RUN_ID_PARAMETER],
        request=json_body(schema_ref(LogLineIn)),
        responses={201: LogEntrySerializer, 200: LogEntrySerializer},
        description="The same as POST, for agents that append with PATCH.",
    )
    def patch(self, request, run_id):
        return self.post(request, run_id)
