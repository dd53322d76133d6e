from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from batchsvc.api.errors import ApiError
from batchsvc.api.fields import FieldSelectionMixin
from batchsvc.api.pagination import CursorPagination
from batchsvc.api.views import ERROR_SCHEMA
from webhooks import selectors, services
from webhooks.models import Endpoint
from webhooks.serializers import (
    DeliverySerializer,
    EndpointInSerializer,
    EndpointSerializer,
    EndpointWithSecretSerializer,
)

CREATE_FIELDS = ("url", "events")


class WebhookViewSet(
    FieldSelectionMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Webhook endpoints: where the events of your batches are sent, signed.

    Everyone sees their own endpoints, staff see all; anyone else's is a 404."""

    serializer_class = EndpointSerializer
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, no user
            return Endpoint.objects.none()
        return selectors.endpoints_for(self.request.user)

    def get_serializer_class(self):
        return DeliverySerializer if self.action == "deliveries" else EndpointSerializer

    @extend_schema(
        request=EndpointInSerializer,
        responses={
            201: EndpointWithSecretSerializer,
            400: OpenApiResponse(ERROR_SCHEMA, description="A bad url or events; `error` says."),
        },
    )
    def create(self, request):
        body = request.data if isinstance(request.data, dict) else None
        if body is None or set(body) - set(CREATE_FIELDS):
            raise ApiError(
                f"The body must be a JSON object with the fields {' and '.join(CREATE_FIELDS)}."
            )
        endpoint = services.endpoint_create(
            owner=request.user, url=body.get("url"), events=body.get("events")
        )
        return Response(EndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        services.endpoint_delete(endpoint=instance)

    @extend_schema(request=None, responses={200: EndpointWithSecretSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        endpoint = services.endpoint_rotate_secret(endpoint=self.get_object())
        return Response(EndpointWithSecretSerializer(endpoint).data)

    @extend_schema(responses=DeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        endpoint = self.get_object()
        paginator = CursorPagination()
        page = paginator.paginate_queryset(selectors.deliveries_of(endpoint), request, view=self)
        return paginator.get_paginated_response(self.get_serializer(page, many=True).data)
