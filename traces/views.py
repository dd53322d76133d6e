import mimetypes

import msgspec
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from batchsvc.api.bulk import read_items
from batchsvc.api.errors import ApiError, error_fields
from batchsvc.api.fields import FieldSelectionMixin
from batchsvc.api.openapi import envelope_schema, json_body, link, links, schema_ref
from batchsvc.api.parsers import BulkJSONParser, RawJSONParser, json_body_of
from batchsvc.api.schemas import describe
from batchsvc.api.throttling import ScopedThrottle
from batchsvc.api.views import query_flag
from batchsvc.ops import metrics
from traces import files, services
from traces.filters import RunFilter, TraceFileFilter
from traces.models import Run, TraceFile
from traces.schemas import (
    RUN_ID_IN_PATH,
    RunBatchResult,
    RunChanges,
    RunIn,
    TraceBatchResult,
    TraceFileIn,
    TraceWriteResult,
)
from traces.selectors import run_for
from traces.serializers import RunSerializer, TraceFileSerializer

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
OWNER_PARAMETER = OpenApiParameter(
    "owner",
    OpenApiTypes.STR,
    description="Staff only: whose run, by username, when several owners use the run_id.",
)
EXAMPLE_RUN = {
    "event_id": "0b7b6f3e-3f5e-4a53-9d2c-6d1c1f0a9b11",
    "run_id": "nightly-2026-01-28-001",
    "agent_name": "launch.orchestrator",
    "job_type": "launch",
    "start_time": "2026-01-28T10:30:00Z",
    "status": "running",
    "metrics_json": {"pages": 12},
}


RUN_ID_PARAMETER = OpenApiParameter("run_id", RUN_ID_IN_PATH, OpenApiParameter.PATH)
TRACE_ID_PARAMETER = OpenApiParameter(
    "id", {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}, OpenApiParameter.PATH
)
RUN = "/api/v1/runs/{run_id}"
TRACE = "/api/v1/traces/{id}"


def run_links(run_id: str) -> dict:
    """Where a run's run_id leads: the run, its changes and its log lines."""
    return {
        "GetRun": link(f"GET {RUN}", run_id=run_id),
        "ChangeRun": link(f"PATCH {RUN}", run_id=run_id),
        "AppendLogLine": link(f"POST {RUN}/setup_log", run_id=run_id),
        "AppendLogLines": link(f"POST {RUN}/setup_logs", run_id=run_id),
        "ListLogLines": link(f"GET {RUN}/setup_logs", run_id=run_id),
    }


def trace_links(id: str) -> dict:
    return {
        "GetTrace": link(f"GET {TRACE}", id=id),
        "GetContent": link(f"GET {TRACE}/content", id=id),
    }


BATCH_ACTION = {
    "parser_classes": [BulkJSONParser],
    "throttle_classes": [ScopedThrottle],
    "throttle_scope": "batch",
}
BATCH_SCHEMA = extend_schema(
    request=json_body(envelope_schema("runs", RunIn, settings.RUNS_BATCH_MAX)),
    responses={
        200: schema_ref(RunBatchResult),
        201: schema_ref(RunBatchResult),
        400: schema_ref(RunBatchResult),
    },
    parameters=BATCH_FLAGS,
    examples=[OpenApiExample("Two runs", value={"runs": [EXAMPLE_RUN]}, request_only=True)],
    extensions=links({code: run_links("$response.body#/runs/0/run_id") for code in (200, 201)}),
)


@extend_schema_view(
    list=extend_schema(extensions=links({200: run_links("$response.body#/results/0/run_id")}))
)
class RunViewSet(
    FieldSelectionMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Telemetry runs: one at a time here, many at a time with the batch endpoints."""

    serializer_class = RunSerializer
    lookup_field = "run_id"
    lookup_value_regex = "[^/]+"
    filterset_class = RunFilter
    # Not end_time: cursor pages need a non-null ordering (a running run has none).
    ordering_fields = ["start_time", "created_at", "updated_at"]
    ordering = ["-start_time"]
    http_method_names = ["get", "post", "patch", "head", "options"]
    parser_classes = [RawJSONParser]  # create and PATCH: the service decodes the run once
    throttle_scope = None  # the batch actions have theirs

    def get_queryset(self):
        return Run.objects.visible_to(self.request.user).select_related("owner")

    def get_object(self):
        write = self.request.method not in ("GET", "HEAD", "OPTIONS")
        return run_for(
            self.request.user,
            self.kwargs["run_id"],
            owner=None if write else self.request.query_params.get("owner"),
            write=write,
            runs=Run.objects.select_related("owner"),
        )

    @extend_schema(parameters=[RUN_ID_PARAMETER, OWNER_PARAMETER])
    def retrieve(self, request, *args, **kwargs):
        return super().retrieve(request, *args, **kwargs)

    @BATCH_SCHEMA
    @action(detail=False, methods=["post"], url_path="batch", **BATCH_ACTION)
    def batch(self, request):
        """Many runs in one request: each valid run stored, each invalid one reported."""
        return self._batch(request, atomic=False)

    @BATCH_SCHEMA
    @action(detail=False, methods=["post"], url_path="batch-transactional", **BATCH_ACTION)
    def batch_transactional(self, request):
        """Many runs in one request, all or nothing."""
        return self._batch(request, atomic=True)

    def _batch(self, request, *, atomic: bool):
        dry_run, errors_only = query_flag(request, "dry_run"), query_flag(request, "errors_only")
        items = read_items(json_body_of(request), "runs", settings.RUNS_BATCH_MAX)
        result = services.runs_ingest(
            owner=request.user, items=items, atomic=atomic, dry_run=dry_run
        )
        if not dry_run:
            metrics.observe_bulk(resource="runs", size=len(items), counts=result.stored_counts())
        if errors_only:
            result = result.failed_only()
        if result.failed and atomic:
            return Response(refused(result), status=status.HTTP_400_BAD_REQUEST)
        code = status.HTTP_200_OK if result.failed or dry_run else status.HTTP_201_CREATED
        return Response(result, status=code)

    @extend_schema(
        request=json_body(schema_ref(RunIn)),
        responses={201: RunSerializer, 200: RunSerializer},
        description="Store one run: 201, or 200 with the stored run when its event_id exists.",
        extensions=links({code: run_links("$response.body#/run_id") for code in (200, 201)}),
    )
    def create(self, request, *args, **kwargs):
        result = services.runs_ingest(
            owner=request.user, items=[json_body_of(request)], atomic=True
        )
        if result.failed:
            raise ApiError(f"Run not stored: {result.errors[0].error}.")
        outcome = result.runs[0]
        run = self.get_queryset().owned_by(request.user).get(event_id=outcome.event_id)
        created = outcome.result == services.CREATED
        return Response(
            self.get_serializer(run).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(
        request=json_body(schema_ref(RunChanges)),
        responses=RunSerializer,
        parameters=[RUN_ID_PARAMETER],
    )
    def partial_update(self, request, *args, **kwargs):
        run = services.run_update(
            run=self.get_object(), changes=read_changes(json_body_of(request))
        )
        return Response(self.get_serializer(run).data)


def refused(result: RunBatchResult) -> RunBatchResult:
    """An all-or-nothing batch that stored nothing, with the sentence every 4xx has."""
    failed = f"{result.failed} of {result.total} runs failed"
    if result.dry_run:
        message = f"{failed}: this batch would be refused whole; nothing was stored (dry run)."
    else:
        message = f"{failed}, so the batch was rolled back and nothing was stored; see errors."
    return error_fields(result, message)


def read_changes(body: msgspec.Raw) -> RunChanges:
    """A PATCH body as :class:`RunChanges`, or a 400 naming the fields it takes."""
    allowed = ", ".join(RunChanges.__struct_fields__)
    try:
        changes = msgspec.json.decode(body, type=RunChanges)
    except msgspec.ValidationError as exc:
        problem = describe(exc)
        if problem.startswith("Object contains unknown field"):
            field = problem.rpartition(" ")[2].strip("`")
            problem = f"{field} cannot be changed; a PATCH takes {allowed}"
        raise ApiError(f"Run not changed: {problem}.") from None
    if not changes.as_fields():
        raise ApiError(f"Run not changed: the body names no field; a PATCH takes {allowed}.")
    return changes


# Trace files ----------------------------------------------------------------

FILES_DETAILS = {
    "files": "a non-empty array of at most TRACES_BATCH_MAX objects "
    "{trace_data, file_name, output_directory?, run_id?}",
}
EXAMPLE_FILES = [
    {
        "trace_data": '{"action_id": "test"}',
        "file_name": "trace_test_actor_123.json",
        "output_directory": "nightly/2026-01-28",
        "run_id": "nightly-2026-01-28-001",
    },
    {
        "trace_data": "=== Test Trace ===\n...",
        "file_name": "trace_test_actor_123.txt",
        "output_directory": "nightly/2026-01-28",
    },
]


class TraceRawJSONParser(RawJSONParser):
    limit_setting = "TRACES_MAX_REQUEST_BYTES"


class TraceBulkJSONParser(BulkJSONParser):
    limit_setting = "TRACES_MAX_REQUEST_BYTES"


@extend_schema_view(
    list=extend_schema(extensions=links({200: trace_links("$response.body#/results/0/id")})),
    retrieve=extend_schema(parameters=[TRACE_ID_PARAMETER]),
)
class TraceFileViewSet(
    FieldSelectionMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Trace files: write one or several, list them newest first, stream one."""

    serializer_class = TraceFileSerializer
    lookup_value_regex = "[0-9]+"
    filterset_class = TraceFileFilter
    ordering_fields = ["created_at"]
    field_selection_exempt = ("content",)  # a file, not the serializer's data
    throttle_scope = None  # write-batch has its own

    def get_queryset(self):
        return TraceFile.objects.visible_to(self.request.user).select_related("owner")

    @extend_schema(
        request=json_body(schema_ref(TraceFileIn)),
        responses={201: schema_ref(TraceWriteResult)},
        examples=[OpenApiExample("A JSON trace", value=EXAMPLE_FILES[0], request_only=True)],
        extensions=links({201: trace_links("$response.body#/id")}),
    )
    @action(detail=False, methods=["post"], parser_classes=[TraceRawJSONParser])
    def write(self, request):
        """Write one trace file under the storage root."""
        outcome = files.trace_files_write(
            owner=request.user, items=[json_body_of(request)]
        ).outcomes[0]
        if not outcome.success:
            raise ApiError(f"Trace file not written: {outcome.error}.", details=outcome.as_dict())
        body = {"success": True, **outcome.as_dict()}
        return Response(
            {name: body[name] for name in TraceWriteResult.__struct_fields__},
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        request=json_body(envelope_schema("files", TraceFileIn, settings.TRACES_BATCH_MAX)),
        responses={200: schema_ref(TraceBatchResult)},
        examples=[OpenApiExample("Two files", value={"files": EXAMPLE_FILES}, request_only=True)],
        extensions=links({200: trace_links("$response.body#/results/0/id")}),
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="write-batch",
        parser_classes=[TraceBulkJSONParser],
        throttle_classes=[ScopedThrottle],
        throttle_scope="batch",
    )
    def write_batch(self, request):
        """Write several trace files in one request, in parallel; each file succeeds
        or fails on its own. 200 with per-file results whenever the envelope is valid."""
        items = read_items(
            json_body_of(request), "files", settings.TRACES_BATCH_MAX, details=FILES_DETAILS
        )
        result = files.trace_files_write(owner=request.user, items=items)
        counts = {"created": result.summary["successful"], "failed": result.summary["failed"]}
        metrics.observe_bulk(resource="trace_files", size=len(items), counts=counts)
        return Response(result.as_dict())

    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
        parameters=[TRACE_ID_PARAMETER],
    )
    @action(detail=True)
    def content(self, request, pk=None):
        """The bytes of one trace file, streamed from the storage."""
        trace_file = self.get_object()
        try:
            stream = files.trace_storage().open(trace_file.storage_name, "rb")
        except (OSError, SuspiciousFileOperation):
            raise ApiError(
                "The trace file is recorded but missing from the storage.",
                status_code=status.HTTP_404_NOT_FOUND,
            ) from None
        return _content_response(stream, trace_file.file_name)


def _content_response(stream, file_name: str) -> FileResponse:
    """Stream a file. Text is served as plain text and JSON as JSON, never as
    HTML or SVG: a trace a client wrote must not run scripts in an admin's
    browser on our origin. Anything else is a download."""
    guessed, _ = mimetypes.guess_type(file_name)
    if guessed == "application/json":
        content_type, attachment = "application/json", False
    elif (guessed or "").startswith("text/") or file_name.endswith((".log", ".jsonl")):
        content_type, attachment = "text/plain; charset=utf-8", False
    else:
        content_type, attachment = "application/octet-stream", True
    response = FileResponse(
        stream, content_type=content_type, as_attachment=attachment, filename=file_name
    )
    response["Content-Security-Policy"] = "sandbox"
    return response
