"""Small pieces every API view uses, and the cross-resource batch GET."""

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from batchsvc.api import batch_get
from batchsvc.api.errors import ApiError
from batchsvc.api.flags import parse_bool
from batchsvc.api.openapi import ERROR_REF, json_body, schema_ref
from batchsvc.api.throttling import ScopedThrottle


def query_flag(request, name: str) -> bool:
    """A boolean query parameter; anything but true/false is a 400, not False."""
    return flag(request.query_params.get(name), f"Query parameter {name}")


def flag(value, what: str) -> bool:
    """A boolean sent as text (query parameter, form field): absent is False, a
    value that is not a boolean a 400 naming ``what``."""
    try:
        return parse_bool(value, default=False)
    except ValueError as exc:
        raise ApiError(f"{what} {exc}.") from None


EXAMPLE_BATCH_GET_REQUEST = {
    "resource_type": "runs",
    "ids": ["nightly-001", "nightly-002", "nightly-001"],
    "fields": ["run_id", "status", "start_time"],
}
EXAMPLE_RUN_FIELDS = {
    "run_id": "nightly-001",
    "status": "success",
    "start_time": "2026-01-28T10:30:00Z",
}
EXAMPLE_BATCH_GET_RESPONSE = {
    "results": [
        {
            "id": "nightly-001",
            "status": "success",
            "status_code": 200,
            "data": EXAMPLE_RUN_FIELDS,
            "error": None,
        },
        {
            "id": "nightly-002",
            "status": "error",
            "status_code": 404,
            "data": None,
            "error": batch_get.NOT_FOUND,
        },
        {
            "id": "nightly-001",
            "status": "success",
            "status_code": 200,
            "data": EXAMPLE_RUN_FIELDS,
            "error": None,
        },
    ],
    "total_requested": 3,
    "total_succeeded": 2,
    "total_failed": 1,
    "processed_at": "2026-01-28T10:31:00.123456Z",
}


class BatchGetSchema(AutoSchema):
    """The request schema is written when the schema is generated, not at import, so
    that it lists every resource type registered by then."""

    def get_request_serializer(self):
        return json_body(batch_get.request_schema())


ERROR_SCHEMA = ERROR_REF
"""A documented refusal's body: the one error format (batchsvc.api.openapi)."""


class BatchGetView(APIView):
    """``POST /api/v1/batch/get``: many objects of one registered resource by id."""

    schema = BatchGetSchema()
    throttle_classes = [ScopedThrottle]
    throttle_scope = "batch"

    @extend_schema(
        operation_id="batch_get",
        responses={
            200: schema_ref(batch_get.BatchGetResponse),
            400: OpenApiResponse(
                ERROR_SCHEMA,
                description="Unknown resource_type, missing, empty or too many ids, a bad id "
                "or an unknown field name; `error` says which.",
            ),
        },
        description=(
            "Fetch up to BATCH_GET_MAX_IDS objects of one resource type in one request. "
            "Always 200 with one result per requested id, in request order (a repeated id is "
            "answered each time): `success`/200 with `data`, or `error`/404 for an id that "
            "does not exist or that the caller may not see. A malformed request is a 400."
        ),
        examples=[
            OpenApiExample(
                "Runs, three fields", value=EXAMPLE_BATCH_GET_REQUEST, request_only=True
            ),
            OpenApiExample(
                "Two found, one missing", value=EXAMPLE_BATCH_GET_RESPONSE, response_only=True
            ),
        ],
    )
    def post(self, request):
        body = batch_get.read_request(request.data)
        context = {"request": request, "view": self}
        return Response(batch_get.batch_get(user=request.user, request=body, context=context))
