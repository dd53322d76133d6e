"""The bulk engine every bulk endpoint shares.

A bulk request is an envelope ``{"<key>": [item, ...]}``. The engine:

1. checks the envelope (present, a non-empty list, within the item limit);
2. validates every item against one msgspec schema, collecting errors by index;
3. writes the valid items in one statement (:mod:`batchsvc.api.inserts`).

Resources (runs, log lines) decide what a conflict means for them.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgspec

from batchsvc.api.errors import ApiError
from batchsvc.api.parsers import JSONBody, decode_json
from batchsvc.api.schemas import describe


@dataclass(frozen=True, slots=True)
class ItemError:
    index: int
    error: str


def parse_envelope(data: Any, key: str, max_items: int, *, details: Any = None) -> list:
    """Return the item list of a bulk body, or raise a 400 that says what is wrong.

    ``details``, when given, goes with the errors about a missing, empty or
    misshapen envelope (what the body should look like).
    """
    if not isinstance(data, dict):
        raise ApiError(
            f"The request body must be a JSON object with a {key} array.", details=details
        )
    items = data.get(key)
    if not isinstance(items, list):
        raise ApiError(f"{key} array is required.", details=details)
    if not items:
        raise ApiError(f"{key} array is required and must hold at least one item.", details=details)
    if len(items) > max_items:
        raise ApiError(
            f"{key} array holds {len(items)} items; the limit is {max_items} per request.",
            details={"limit": max_items, "received": len(items)},
        )
    return items


def read_items(
    body: Any, key: str, schema: type[msgspec.Struct], max_items: int, *, details: Any = None
) -> list:
    """The items of a bulk body: already-validated ``schema`` instances when the
    whole body is valid (decoded and validated in one pass, the common case), else
    plain JSON values for :func:`validate_items` to judge one by one."""
    if isinstance(body, JSONBody):
        try:
            items = getattr(msgspec.json.decode(body, type=_envelope(key, schema)), key)
        except (msgspec.DecodeError, RecursionError):  # invalid items, or not JSON at all
            body = decode_json(body)  # ...find out which
        else:
            if 0 < len(items) <= max_items:
                return items
            body = {key: items}
    return parse_envelope(body, key, max_items, details=details)


@lru_cache
def _envelope(key: str, schema: type[msgspec.Struct]) -> type[msgspec.Struct]:
    return msgspec.defstruct(f"{schema.__name__}Envelope", [(key, list[schema])])


def validate_items(items: Sequence, schema: type[msgspec.Struct]):
    """Convert every raw item to ``schema``; return ``(valid, errors)``.

    ``valid`` holds ``(index, item)`` pairs and ``errors`` one :class:`ItemError` per
    invalid item, both in request order. Items that are ``schema`` instances already
    (from :func:`read_items`) pass as they are.
    """
    valid, errors = [], []
    convert = _converter(schema)
    for index, raw in enumerate(items):
        if type(raw) is schema:
            valid.append((index, raw))
            continue
        try:
            valid.append((index, convert(raw, schema)))
        except msgspec.ValidationError as exc:
            errors.append(ItemError(index, describe(exc, schema)))
        except RecursionError:
            errors.append(ItemError(index, "item is nested too deeply"))
    return valid, errors


@lru_cache
def _converter(schema: type[msgspec.Struct]):
    """``msgspec.convert``, or for a schema with ``msgspec.Raw`` fields (which only
    a JSON decoder can fill) a round trip through JSON text."""
    fields = msgspec.structs.fields(schema)
    if any(
        msgspec.Raw in (field.type, getattr(field.type, "__origin__", None)) for field in fields
    ):
        encode, decode = msgspec.json.encode, msgspec.json.decode
        return lambda raw, schema: decode(encode(raw), type=schema)
    return msgspec.convert


def first_occurrences(pairs: Iterable[tuple[int, Any]], key) -> tuple[list, dict[int, int]]:
    """Split ``(index, item)`` pairs into the first occurrence of each key and a map
    from each repeated index to the index of its first occurrence."""
    firsts, seen, repeats = [], {}, {}
    for index, item in pairs:
        value = key(item)
        if value in seen:
            repeats[index] = seen[value]
        else:
            seen[value] = index
            firsts.append((index, item))
    return firsts, repeats
