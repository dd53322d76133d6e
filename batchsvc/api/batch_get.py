"""The cross-resource batch GET: up to ``BATCH_GET_MAX_IDS`` objects of one registered
resource (see :mod:`batchsvc.api.resources`) in one request, one result per id.

The body and response are msgspec Structs: the body is validated with them, the
response is built and rendered from them, and the OpenAPI schema is written from them.
"""

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec
from django.conf import settings
from django.utils import timezone

from batchsvc.api import fields, resources
from batchsvc.api.bulk import parse_envelope
from batchsvc.api.errors import ApiError
from batchsvc.api.schemas import describe

NOT_FOUND = "Not found."
AMBIGUOUS = "Several owners use this id; add owner to the request to choose one."


class BatchGetRequest(msgspec.Struct, forbid_unknown_fields=True):
    resource_type: str
    ids: list[int | str]
    fields: list[str] | None = None
    owner: str | None = None


class BatchGetItem(msgspec.Struct):
    id: int | str
    status: Literal["success", "error"]
    # An int, not Literal[200, 404]: drf-spectacular's enum hook needs a "type" that
    # batchsvc.api.openapi only adds to string enums.
    status_code: Annotated[
        int, msgspec.Meta(description="200, 404 or 409 (ambiguous), as a single GET would")
    ]
    data: dict[str, Any] | None
    error: str | None


class BatchGetResponse(msgspec.Struct, forbid_unknown_fields=True):
    results: list[BatchGetItem]
    total_requested: int
    total_succeeded: int
    total_failed: int
    processed_at: dt.datetime


def read_request(data: Any) -> BatchGetRequest:
    """The body as a :class:`BatchGetRequest`, or a 400 saying what is wrong."""
    if not isinstance(data, dict):
        raise ApiError("The request body must be a JSON object with resource_type and ids.")
    parse_envelope(data, "ids", settings.BATCH_GET_MAX_IDS)  # present, non-empty, within limit
    try:
        return msgspec.convert(data, BatchGetRequest)
    except msgspec.ValidationError as exc:
        raise ApiError(f"The batch GET request is not valid: {describe(exc)}.") from None


def batch_get(*, user, request: BatchGetRequest, context: dict) -> BatchGetResponse:
    """Answer every id of ``request`` in order, as ``user`` sees the resource.

    1. Find the resource, convert the ids to its id type and check the field names,
       so that any 400 comes before the database is touched.
    2. Fetch the distinct ids in one query; serialize each object found once, with
       only the chosen fields.
    3. Answer each requested id, repeats included: 200 with the object, or 404 when
       the user cannot see it, whether it exists or not.
    """
    resource = resources.get(request.resource_type)
    ids = resource.convert_ids(request.ids)
    serializer = resource.serializer_class(many=True, context=context)
    if request.fields is not None:
        fields.restrict(serializer, request.fields)

    found, ambiguous = resource.fetch(user, ids, owner=request.owner)
    data_by_id = dict(zip(found, serializer.to_representation(found.values()), strict=True))
    results = [
        _result(raw, data_by_id.get(key), ambiguous=key in ambiguous)
        for raw, key in zip(request.ids, ids, strict=True)
    ]
    succeeded = sum(1 for item in results if item.data is not None)
    return BatchGetResponse(
        results=results,
        total_requested=len(results),
        total_succeeded=succeeded,
        total_failed=len(results) - succeeded,
        processed_at=timezone.now(),
    )


def _result(raw_id, data, *, ambiguous: bool) -> BatchGetItem:
    # The id is echoed as the caller sent it, so that it can match it as it is.
    if ambiguous:
        return BatchGetItem(raw_id, "error", 409, None, AMBIGUOUS)
    if data is None:
        return BatchGetItem(raw_id, "error", 404, None, NOT_FOUND)
    return BatchGetItem(raw_id, "success", 200, data, None)


def request_schema() -> dict:
    """The JSON schema of the body, with the resource types registered now: one
    shape per resource type, its ids of the type it looks them up by and its field
    names, so that a body the schema calls valid is one the endpoint takes."""
    return {"oneOf": [_resource_request_schema(resources.get(name)) for name in resources.names()]}


def _resource_request_schema(resource: resources.Resource) -> dict:
    names = fields.field_names(resource.serializer_class())
    return {
        "type": "object",
        "title": f"batch GET of {resource.name}",
        "required": ["resource_type", "ids"],
        "additionalProperties": False,
        "properties": {
            "resource_type": {"type": "string", "enum": [resource.name]},
            "ids": {
                "type": "array",
                "minItems": 1,
                "maxItems": settings.BATCH_GET_MAX_IDS,
                "items": msgspec.json.schema(resource.id_type),
                "description": f"{resource.name} by {resource.lookup_field}. "
                "A repeated id is answered each time.",
            },
            "owner": {
                "type": ["string", "null"],
                "description": "Only objects of this owner (a username). Staff see every "
                "owner's objects; an id several owners use answers 409 without it.",
            },
            "fields": {
                "type": ["array", "null"],
                "minItems": 1,
                "items": {"type": "string", "enum": names},
                "description": "Names of the fields to return in each `data` (all when absent); "
                "an unknown name is a 400 listing the valid ones.",
            },
        },
    }
