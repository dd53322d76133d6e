"""OpenAPI: request bodies validated by msgspec, the one error format, and links.

The msgspec Struct is the one source of truth for a bulk item: the same type that
validates the request is turned into the JSON schema the docs show. The schema's
postprocessing hooks (SPECTACULAR_SETTINGS) spell each path one way, give every
operation its refusals in the one error format, and turn the links views declare
(:func:`links`) into OpenAPI links, which let a client or a fuzzer follow an id
from the answer that gives it to the operations that take it.
"""

import enum

import msgspec
from django.conf import settings
from drf_spectacular.plumbing import resolve_type_hint

REF_TEMPLATE = "#/components/schemas/{name}"


def schema_ref(*types: type) -> dict:
    """Register the types' schemas as components and return a ``$ref`` to the first."""
    refs, components = msgspec.json.schema_components(
        types, schema_hook=_schema_hook, ref_template=REF_TEMPLATE
    )
    _type_enums(components)
    settings.SPECTACULAR_SETTINGS["APPEND_COMPONENTS"].setdefault("schemas", {}).update(components)
    return refs[0]


def envelope_schema(key: str, item_type: type, max_items: int) -> dict:
    """``{"<key>": [item, ...]}`` with the item schema from msgspec."""
    return {
        "type": "object",
        "required": [key],
        "additionalProperties": False,
        "properties": {
            key: {
                "type": "array",
                "minItems": 1,
                "maxItems": max_items,
                "items": schema_ref(item_type),
            }
        },
    }


def json_body(schema: dict) -> dict:
    """An ``extend_schema(request=...)`` value for a raw JSON schema."""
    return {"application/json": schema}


def _type_enums(node) -> None:
    """msgspec writes a Literal of strings as a bare ``enum``; OpenAPI tools (and
    drf-spectacular's enum hook) expect its ``type`` too."""
    if isinstance(node, dict):
        if "enum" in node and "type" not in node and all(isinstance(v, str) for v in node["enum"]):
            node["type"] = "string"
        for value in node.values():
            _type_enums(value)
    elif isinstance(node, list):
        for value in node:
            _type_enums(value)


def _schema_hook(cls: type) -> dict:
    # Django's TextChoices are enums msgspec validates but cannot describe;
    # drf-spectacular describes them the way it does for serializers, so both
    # share one enum component.
    if isinstance(cls, type) and issubclass(cls, enum.Enum):
        return resolve_type_hint(cls)
    raise NotImplementedError(f"No JSON schema for {cls!r}.")


def without_trailing_slashes(result, generator, request, public):
    """Every route answers with or without its trailing slash; the schema spells
    each path one way, without, as the README does."""
    result["paths"] = {path.rstrip("/"): item for path, item in result["paths"].items()}
    return result


HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

ERROR_COMPONENT = "Error"
ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
ERROR = {
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {"type": "string", "description": "What went wrong, in one sentence."},
        "details": {"description": "Where useful: field errors, per-item errors, limits."},
        "request_id": {"type": "string", "description": "The response's X-Request-ID."},
    },
}


def one_error_format(result, generator, request, public):
    """Every operation answers a refusal (4XX) or an outage (5XX) with the one error
    body (batchsvc.api.errors); a refusal it documents with a body of its own (a
    rolled-back batch) has that body or the error body."""
    result.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR
    for operation in _operations(result):
        responses = operation.setdefault("responses", {})
        for code, response in responses.items():
            if code[0] in "45":
                _allow_error_body(response)
        for code, what in (("4XX", "Refused"), ("5XX", "Unavailable (503) or failed")):
            responses.setdefault(
                code,
                {"description": f"{what}: see error.", "content": _json(ERROR_REF)},
            )
    return result


def any_value_or_null(result, generator, request, public):
    """drf-spectacular writes a nullable field of any JSON value (a JSONField) as
    ``oneOf: [{}, {"type": "null"}]``, which no null satisfies: null matches both,
    and oneOf wants exactly one. Any value, null included, is ``{}``."""
    _walk_any_or_null(result)
    return result


def _walk_any_or_null(node) -> None:
    if isinstance(node, dict):
        if node.get("oneOf") == [{}, {"type": "null"}]:
            del node["oneOf"]
        for value in node.values():
            _walk_any_or_null(value)
    elif isinstance(node, list):
        for value in node:
            _walk_any_or_null(value)


def _allow_error_body(response: dict) -> None:
    content = response.setdefault("content", _json(ERROR_REF))
    schema = content.get("application/json", {}).get("schema")
    if schema is not None and schema != ERROR_REF:
        content["application/json"]["schema"] = {"anyOf": [schema, ERROR_REF]}
    response["description"] = response.get("description") or "Refused: see error."


def _json(schema: dict) -> dict:
    return {"application/json": {"schema": schema}}


LINKS = "x-batchsvc-links"


def link(target: str, **parameters: str) -> dict:
    """An OpenAPI link to the operation ``target`` ("GET /api/v1/runs/{run_id}"), its
    parameters filled from the answer (``run_id="$response.body#/run_id"``)."""
    return {"target": target, "parameters": parameters}


def links(by_status: dict[int, dict[str, dict]]) -> dict:
    """``extend_schema(extensions=links({201: {"GetRun": link(...)}}))``: the links of
    an operation's answers, by status code and name."""
    return {LINKS: {str(code): named for code, named in by_status.items()}}


def links_between_operations(result, generator, request, public):
    """The links views declare with :func:`links`, as OpenAPI links by operationId."""
    ids = {
        f"{method.upper()} {path}": operation["operationId"]
        for path, item in result["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }
    for operation in _operations(result):
        for code, named in operation.pop(LINKS, {}).items():
            response = operation["responses"][code]
            response["links"] = {
                name: {"operationId": ids[spec["target"]], "parameters": spec["parameters"]}
                for name, spec in named.items()
            }
    return result


def _operations(result):
    for item in result["paths"].values():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield operation
