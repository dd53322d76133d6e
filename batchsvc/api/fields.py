"""Field selection: ``?fields=a,b`` on GET endpoints and ``fields`` in the batch GET.

One rule everywhere: only the chosen fields are serialized (the others are taken out
of ``serializer.fields`` before any object is read, so a costly field that was not
asked for is never computed), and an unknown name is a 400 naming it and listing the
valid ones.

How an app adopts it:

1. Put :class:`FieldSelectionMixin` first in the bases of a DRF generic view or
   viewset::

       class RunViewSet(FieldSelectionMixin, mixins.ListModelMixin, ..., viewsets.GenericViewSet):
           serializer_class = RunSerializer

   Its GET and HEAD requests (list and detail alike) then accept ``?fields=a,b``
   (or ``?fields=a&fields=b``), and the OpenAPI schema documents the parameter with
   the serializer's field names. Nothing changes in the serializer. A GET action
   whose answer is not the serializer's data (a file download) goes in the view's
   ``field_selection_exempt``: the parameter is neither read nor documented there.
2. Elsewhere (a service, a command), call :func:`restrict` on any serializer,
   ``many=True`` or not, before reading its ``.data``.

Names are checked before the database is queried, so a list with a bad name costs
no query and an empty list still refuses a bad name.
"""

from collections.abc import Iterable, Sequence

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from batchsvc.api.errors import ApiError

QUERY_PARAM = "fields"
_SAFE_METHODS = ("GET", "HEAD")


def parse_query(values: Sequence[str]) -> list[str] | None:
    """The names in ``?fields=a,b`` (every occurrence of the parameter), or None
    when it is absent. Present but naming nothing is a 400, not "all fields"."""
    if not values:
        return None
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    if not names:
        raise ApiError(f"Query parameter {QUERY_PARAM} must name at least one field.")
    return names


def check(requested: Iterable[str], available: Iterable[str]) -> list[str]:
    """The requested names without repeats, in request order, or a 400 naming the
    unknown ones and listing the valid ones."""
    valid = list(available)
    requested = list(dict.fromkeys(requested))
    unknown = [name for name in requested if name not in valid]
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        noun = "field" if len(unknown) == 1 else "fields"
        raise ApiError(
            f"Unknown {noun} {listed}; valid fields: {', '.join(valid)}.",
            details={"unknown": unknown, "valid": valid},
        )
    if not requested:
        raise ApiError(f"{QUERY_PARAM} must name at least one field.")
    return requested


def _target(serializer: serializers.BaseSerializer) -> serializers.BaseSerializer:
    return serializer.child if isinstance(serializer, serializers.ListSerializer) else serializer


def field_names(serializer: serializers.BaseSerializer) -> list[str]:
    """The names a selection may use: the serializer's fields (its child's for many=True)."""
    return list(_target(serializer).fields)


def restrict(serializer: serializers.BaseSerializer, requested: Iterable[str]):
    """Keep only the ``requested`` fields of ``serializer`` (checked first); return it."""
    fields = _target(serializer).fields
    keep = set(check(requested, fields))
    for name in [name for name in fields if name not in keep]:
        del fields[name]
    return serializer


class FieldSelectionSchema(AutoSchema):
    """Documents ``?fields=`` on the GET operations of a :class:`FieldSelectionMixin` view."""

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        if self.method != "GET" or _exempt(self.view):
            return parameters
        return [*parameters, query_parameter(field_names(self._get_serializer()))]


def query_parameter(names: Sequence[str]) -> OpenApiParameter:
    # An array sent as one comma-separated value (style form, explode false) is
    # exactly ?fields=a,b: the schema says which names, so a generated value is valid.
    return OpenApiParameter(
        QUERY_PARAM,
        {"type": "array", "items": {"type": "string", "enum": list(names)}, "minItems": 1},
        style="form",
        explode=False,
        description=(
            "Comma-separated names of the fields to return (every field when absent); "
            "an unknown name is a 400. Names: " + ", ".join(f"`{name}`" for name in names) + "."
        ),
    )


class FieldSelectionMixin:
    """``?fields=`` for the GET and HEAD requests of a DRF generic view (see the
    module docstring). Other methods ignore the parameter."""

    schema = FieldSelectionSchema()
    selected_fields: list[str] | None = None
    field_selection_exempt: tuple[str, ...] = ()
    """Viewset actions whose answer is not the serializer's data."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttles
        if request.method not in _SAFE_METHODS or _exempt(self):
            return
        requested = parse_query(request.query_params.getlist(QUERY_PARAM))
        if requested is not None:
            # Checked against an empty serializer so that the answer does not
            # depend on whether the page or object exists.
            self.selected_fields = check(requested, field_names(super().get_serializer()))

    def query_parameters(self) -> list[str]:
        """The query parameters this adds to the view's (batchsvc.api.filters)."""
        return [] if _exempt(self) else [QUERY_PARAM]

    def get_serializer(self, *args, **kwargs):
        serializer = super().get_serializer(*args, **kwargs)
        if self.selected_fields is not None:
            restrict(serializer, self.selected_fields)
        return serializer


def _exempt(view) -> bool:
    return getattr(view, "action", None) in getattr(view, "field_selection_exempt", ())


def selectable_responses(result, generator, request, public):
    """Schema postprocessing: a GET that takes ``?fields=`` answers any of its
    serializer's fields, so its 200 answer is the component copied without
    required properties, as ``<Name>Fields`` (a page of them, for a list)."""
    schemas = result.get("components", {}).get("schemas", {})
    for item in result["paths"].values():
        operation = item.get("get", {})
        names = {(p["name"], p["in"]) for p in operation.get("parameters", [])}
        content = operation.get("responses", {}).get("200", {}).get("content", {})
        if (QUERY_PARAM, "query") in names and "application/json" in content:
            schema = content["application/json"]["schema"]
            content["application/json"]["schema"] = _selectable(schema, schemas)
    return result


def _selectable(schema: dict, schemas: dict) -> dict:
    ref = schema.get("$ref", "")
    name = ref.rpartition("/")[2]
    if name not in schemas:
        return schema
    copy = {key: value for key, value in schemas[name].items() if key != "required"}
    results = copy.get("properties", {}).get("results", {})
    if results.get("type") == "array":  # a page: its items are the selection
        properties = {**copy["properties"]}
        properties["results"] = {**results, "items": _selectable(results["items"], schemas)}
        copy = {**schemas[name], "properties": properties}
    schemas.setdefault(f"{name}Fields", copy)
    return {"$ref": f"{ref}Fields"}
