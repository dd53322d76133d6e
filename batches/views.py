from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiRequest,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from batches import results, selectors, services
from batches.filters import BatchFilter, InteractionFilter
from batches.inputs import BatchUploadSerializer, RetryFailedSerializer
from batches.models import Batch, Interaction
from batches.serializers import (
    BatchCreatedSerializer,
    BatchDetailSerializer,
    BatchSerializer,
    InteractionSerializer,
)
from batchsvc.api.errors import ApiError
from batchsvc.api.fields import FieldSelectionMixin
from batchsvc.api.filters import FilterBackend
from batchsvc.api.openapi import link, links
from batchsvc.api.pagination import CursorPagination
from batchsvc.api.parsers import JSONParser
from batchsvc.api.throttling import ScopedThrottle
from batchsvc.api.views import ERROR_SCHEMA, query_flag

BATCH = "/api/v1/batches/{id}"
UPLOAD_DISPOSITION = {
    "schema": {"type": "string"},
    "example": 'form-data; name="file"; filename="questions.csv"',
}


def batch_links(id: str) -> dict:
    """Where a batch's id leads (OpenAPI links): the batch and what it offers."""
    return {
        "GetBatch": link(f"GET {BATCH}", id=id),
        "ListInteractions": link(f"GET {BATCH}/interactions", id=id),
        "GetResults": link(f"GET {BATCH}/results", id=id),
        "Cancel": link(f"POST {BATCH}/cancel", id=id),
        "RetryFailed": link(f"POST {BATCH}/retry-failed", id=id),
    }


class InteractionPagination(CursorPagination):
    ordering = "row_number"

    def get_ordering(self, request, queryset, view):
        return (self.ordering,)  # not the batch list's ordering of the view


@extend_schema_view(
    list=extend_schema(extensions=links({200: batch_links("$response.body#/results/0/id")}))
)
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
            # What the action lists, for the filters' schema.
            return (Interaction if self.action == "interactions" else Batch).objects.none()
        return selectors.batches_for(self.request.user)

    def get_serializer_class(self):
        if self.action == "interactions":
            return InteractionSerializer
        return BatchDetailSerializer if self.action == "retrieve" else BatchSerializer

    def filter_queryset(self, queryset):
        # Filters apply to what an action lists (the batches, or a batch's
        # interactions with their own filters), never to the batch a detail route
        # looks up: ?status= of /batches/<id>/interactions filters the interactions.
        listing = self.action == "list" or queryset.model is Interaction
        return super().filter_queryset(queryset) if listing else queryset

    def get_throttles(self):
        if self.action in ("create", "retry_failed"):
            self.throttle_scope = "batch"
            return [ScopedThrottle()]
        return super().get_throttles()

    @extend_schema(
        request={
            "multipart/form-data": OpenApiRequest(
                BatchUploadSerializer,
                # The file part's name says its format: questions.csv or questions.xlsx.
                encoding={"file": {"headers": {"Content-Disposition": UPLOAD_DISPOSITION}}},
            )
        },
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="The same key and request again: the same 202 with "
                "Idempotent-Replayed: true. The key with another request: 422. While the "
                "first request with the key is being created: 409 with Retry-After.",
            ),
            OpenApiParameter("dry_run", OpenApiTypes.BOOL, description="Validate only."),
        ],
        responses={
            202: BatchCreatedSerializer,
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="The dry run's summary."),
            400: OpenApiResponse(ERROR_SCHEMA, description="A bad form field or file."),
            409: OpenApiResponse(ERROR_SCHEMA, description="The key's first request is running."),
            422: OpenApiResponse(ERROR_SCHEMA, description="The key was used for another request."),
        },
        extensions=links({202: batch_links("$response.body#/batch_id")}),
    )
    def create(self, request):
        form = upload_form(request.data)
        upload = {key: form[key] for key in ("processor", "options", "priority", "concurrency")}
        if query_flag(request, "dry_run") or form["dry_run"]:
            summary = services.batch_dry_run(upload=form["file"], **upload)
            return Response(summary, status=status.HTTP_200_OK)
        result = services.batch_create(
            owner=request.user,
            upload=form["file"],
            name=form["name"],
            idempotency_key=request.headers.get("Idempotency-Key", "").strip(),
            **upload,
        )
        body = BatchCreatedSerializer(result.batch).data
        headers = {"Location": result.batch.get_absolute_url()}
        if not result.created:
            headers["Idempotent-Replayed"] = "true"
        return Response(body, status=status.HTTP_202_ACCEPTED, headers=headers)

    @extend_schema(
        responses=InteractionSerializer(many=True),
        # The batch's id: the queryset the schema sees for this action is the items'.
        parameters=[OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
    )
    @action(
        detail=True,
        methods=["get"],
        filter_backends=[FilterBackend],  # in row order always
        filterset_class=InteractionFilter,
        pagination_class=InteractionPagination,
    )
    def interactions(self, request, pk=None):
        batch = self.get_object()
        page = self.paginate_queryset(self.filter_queryset(batch.interactions.all()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=list(results.FORMATS))],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], url_path="results")
    def results(self, request, pk=None):
        batch = self.get_object()
        format = request.query_params.get("format", "json")
        if format not in results.FORMATS:
            raise ApiError(f"format must be one of {', '.join(results.FORMATS)}, not {format!r}.")
        return results_response(batch, format)

    @extend_schema(
        request=None,
        responses={200: BatchSerializer, 409: OpenApiResponse()},
        extensions=links({200: {"GetBatch": link(f"GET {BATCH}", id="$response.body#/id")}}),
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel: ``cancelling`` while items that were running finish, then
        ``cancelled``."""
        batch = self.get_object()
        services.batch_cancel(batch=batch)
        return Response(self.get_serializer(selectors.with_item_counts(batch)).data)

    @extend_schema(
        request=RetryFailedSerializer,
        responses={202: BatchSerializer, 409: OpenApiResponse()},
        extensions=links({202: {"GetBatch": link(f"GET {BATCH}", id="$response.body#/id")}}),
    )
    @action(detail=True, methods=["post"], url_path="retry-failed")
    def retry_failed(self, request, pk=None):
        """Queue the failed items again: all of them, or one failure group's."""
        batch = self.get_object()
        group = retry_form(request.data)
        retried = services.batch_retry_failed(batch=batch, group=group, by=request.user)
        return Response(
            {**self.get_serializer(batch).data, "requeued": retried, "retried_items": retried},
            status=status.HTTP_202_ACCEPTED,
        )

    def perform_content_negotiation(self, request, force=False):
        # On results, ?format= names the file format, not one of DRF's renderers
        # (which would answer 404 for csv and xlsx).
        return super().perform_content_negotiation(request, force=force or self.action == "results")


def results_response(batch: Batch, format: str) -> StreamingHttpResponse:
    """The results file as a streamed download (the API and the admin)."""
    response = StreamingHttpResponse(
        results.results_stream(batch, format), content_type=results.FORMATS[format]
    )
    filename = results.results_filename(batch, format)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def upload_form(data) -> dict:
    """The upload form validated by BatchUploadSerializer, or a 400 whose sentence is
    the first refusal (every refusal in details)."""
    form = BatchUploadSerializer(data=data)
    if not form.is_valid():
        first = next(iter(form.errors.values()))
        raise ApiError(str(first[0]), details=form.errors)
    return form.validated_data


def retry_form(data) -> str:
    """The failure group a retry names ("" for every failed item), or a 400."""
    form = RetryFailedSerializer(data=data if hasattr(data, "keys") else {"": data})
    if not form.is_valid():
        first = next(iter(form.errors.values()))
        raise ApiError(str(first[0]), details=form.errors)
    return form.validated_data.get("group", "")
