"""OpenAPI for request bodies validated by msgspec.

The msgspec Struct is the one source of truth for a bulk item: the same type that
validates the request is turned into the JSON schema the docs show.
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
