import msgspec
from django.http import StreamingHttpResponse
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from batches import selectors, services
from batches.filters import BatchFilter, InteractionFilter
from batches.models import Batch
from batches.serializers import (
    BatchCreatedSerializer,
    BatchSerializer,
    BatchUploadSerializer,
    InteractionSerializer,
)
from batchsvc.errors import ApiError
from batchsvc.fields import FieldSelectionMixin
from batchsvc.pagination import CursorPagination
from batchsvc.parsers import JSONParser
from batchsvc.throttling import ScopedThrottle
from batchsvc.views import flag, query_flag


class InteractionPagination(CursorPagination):
    ordering = "row_number"

    def get_ordering(self, request, queryset, view):
        return (self.ordering,)  # not the batch list's ordering of the view


class BatchViewSet(
    FieldSelectionMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Spreadsheet batches: upload, follow, download results, cancel, retry.

    Everyone sees their own batches, staff see all; anyone else's batch is a 404."""

    serializer_class = BatchSerializer
    parser_classes = [MultiPartParser, JSONParser]  # uploads; JSON for cancel and retry
    filterset_class = BatchFilter
    ordering_fields = ["created_at", "updated_at"]
    ordering = ["-created_at"]
    field_selection_exempt = ("results",)  # a file, whatever its format

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, no user
            return Batch.objects.none()
        return selectors.batches_for(self.request.user)

    def get_serializer_class(self):
        return InteractionSerializer if self.action == "interactions" else BatchSerializer

    def filter_queryset(self, queryset):
        # The list's filters (?status=...) are not meant for the batch of a detail
        # route, whose own ?status= filters its interactions.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def get_throttles(self):
        if self.action in ("create", "retry_failed"):
            self.throttle_scope = "batch"
            return [ScopedThrottle()]
        return super().get_throttles()

    @extend_schema(
        request={"multipart/form-data": BatchUploadSerializer},
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER),
            OpenApiParameter("dry_run", OpenApiTypes.BOOL, description="Validate only."),
        ],
        responses={202: BatchCreatedSerializer, 200: OpenApiTypes.OBJECT},
    )
    def create(self, request):
        upload = request.FILES.get("file")
        if upload is None:
            raise ApiError("Attach the spreadsheet (.csv or .xlsx) as the form field 'file'.")
        processor = request.data.get("processor") or "echo"
        options = _options(request.data.get("options"))
        if query_flag(request, "dry_run") or flag(
            request.data.get("dry_run"), "Form field dry_run"
        ):
            summary = services.batch_dry_run(upload=upload, processor=processor, options=options)
            return Response(summary, status=status.HTTP_200_OK)
        result = services.batch_create(
            owner=request.user,
            upload=upload,
            name=request.data.get("name") or "",
            processor=processor,
            options=options,
            idempotency_key=request.headers.get("Idempotency-Key", "").strip(),
        )
        body = BatchCreatedSerializer(result.batch).data
        headers = {"Location": result.batch.get_absolute_url()}
        if not result.created:
            headers["Idempotent-Replayed"] = "true"
        return Response(body, status=status.HTTP_202_ACCEPTED, headers=headers)

    @extend_schema(
        responses=InteractionSerializer(many=True),
        parameters=[OpenApiParameter("status", str)],
    )
    @action(detail=True, methods=["get"])
    def interactions(self, request, pk=None):
        batch = self.get_object()
        queryset = InteractionFilter(
            request.query_params, queryset=batch.interactions.all(), request=request
        )
        if not queryset.is_valid():
            # As the list's filter backend does: details name each bad parameter and why.
            raise translate_validation(queryset.errors)
        paginator = InteractionPagination()
        page = paginator.paginate_queryset(queryset.qs, request, view=self)
        return paginator.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=list(selectors.FORMATS))],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], url_path="results")
    def results(self, request, pk=None):
        batch = self.get_object()
        format = request.query_params.get("format", "json")
        if format not in selectors.FORMATS:
            raise ApiError(f"format must be one of {', '.join(selectors.FORMATS)}, not {format!r}.")
        return results_response(batch, format)

    @extend_schema(request=None, responses={200: BatchSerializer, 409: OpenApiResponse()})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        batch = self.get_object()
        services.batch_cancel(batch=batch)
        return Response(self.get_serializer(batch).data)

    @extend_schema(request=None, responses={202: BatchSerializer, 409: OpenApiResponse()})
    @action(detail=True, methods=["post"], url_path="retry-failed")
    def retry_failed(self, request, pk=None):
        batch = self.get_object()
        retried = services.batch_retry_failed(batch=batch)
        return Response(
            {**self.get_serializer(batch).data, "retried_items": retried},
            status=status.HTTP_202_ACCEPTED,
        )

    def perform_content_negotiation(self, request, force=False):
        # On results, ?format= names the file format, not one of DRF's renderers
        # (which would answer 404 for csv and xlsx).
        return super().perform_content_negotiation(request, force=force or self.action == "results")


def results_response(batch: Batch, format: str) -> StreamingHttpResponse:
    """The results file as a streamed download (the API and the admin)."""
    response = StreamingHttpResponse(
        selectors.results_stream(batch, format), content_type=selectors.FORMATS[format]
    )
    filename = selectors.results_filename(batch, format)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _options(raw) -> dict:
    if raw in (None, ""):
        return {}
    if hasattr(raw, "read"):
        raw = raw.read()
    try:
        options = msgspec.json.decode(raw)
    except (msgspec.DecodeError, TypeError):
        raise ApiError("options must be a JSON object given as text.") from None
    if not isinstance(options, dict):
        raise ApiError("options must be a JSON object given as text.")
    return options
