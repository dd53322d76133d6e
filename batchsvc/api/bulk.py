"""The bulk engine every bulk endpoint shares.

A bulk request is an envelope ``{"<key>": [item, ...]}``. The engine:

1. decodes the envelope once, its items kept as raw JSON text (``msgspec.Raw``), and
   checks it (an object, the list present and non-empty, within the item limit);
2. decodes every item once, against one msgspec schema, collecting errors by index;
3. writes the valid items in one statement (:mod:`batchsvc.api.inserts`).

Every way an item comes in (a bulk body, a single POST, ``import_runs``) hands the
services raw items, so that a service has one kind of input and one path.
Resources (runs, log lines) decide what a conflict means for them.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import msgspec
from rest_framework.exceptions import ParseError

from batchsvc.api.errors import ApiError
from batchsvc.api.parsers import too_deep
from batchsvc.api.schemas import describe, nul_free_texts

_NULL = msgspec.Raw(b"null")


@dataclass(frozen=True, slots=True)
class ItemError:
    index: int
    error: str


def envelope(key: str) -> type[msgspec.Struct]:
    """The envelope ``{"<key>": [item, ...]}`` and nothing else, its items raw. An
    endpoint whose body has more fields declares its own Struct the same way: the
    list as ``list[msgspec.Raw] | None = None``, unknown fields forbidden."""
    return _envelope(key)


@lru_cache
def _envelope(key: str) -> type[msgspec.Struct]:
    return msgspec.defstruct(
        f"{key.title()}Envelope",
        [(key, list[msgspec.Raw] | None, None)],
        forbid_unknown_fields=True,
    )


def read_envelope(
    body: bytes,
    key: str,
    max_items: int,
    *,
    schema=None,
    details: Any = None,
    refused: str = "The request body is not valid",
) -> msgspec.Struct:
    """Decode a bulk body once into ``schema`` (default: :func:`envelope` of ``key``),
    its ``key`` a non-empty list of at most ``max_items`` raw items; else a 400 that
    says what is wrong. ``details``, when given, goes with the errors about a
    missing, empty or misshapen envelope (what the body should look like);
    ``refused`` starts the sentence about the schema's other fields."""
    schema = schema or envelope(key)
    try:
        decoded = msgspec.json.decode(body, type=schema)
    except msgspec.ValidationError as exc:
        raise _envelope_error(exc, body, key, schema, details, refused) from None
    except msgspec.DecodeError as exc:
        raise ParseError(f"Request body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise too_deep() from None
    _check_items(getattr(decoded, key), key, max_items, details)
    return decoded


def read_items(body: bytes, key: str, max_items: int, *, details: Any = None) -> list:
    """The raw items of a bulk body ``{"<key>": [...]}`` (see :func:`read_envelope`)."""
    return getattr(read_envelope(body, key, max_items, details=details), key)


def parse_envelope(data: Any, key: str, max_items: int, *, details: Any = None) -> list:
    """The item list of a body already decoded to Python values, or a 400 as
    :func:`read_envelope` answers it."""
    if not isinstance(data, dict):
        raise _not_an_object(key, details)
    items = data.get(key)
    _check_items(items if isinstance(items, list) else None, key, max_items, details)
    return items


def _check_items(items: list | None, key: str, max_items: int, details: Any) -> None:
    if items is None:
        raise ApiError(f"{key} array is required.", details=details)
    if not items:
        raise ApiError(f"{key} array is required and must hold at least one item.", details=details)
    if len(items) > max_items:
        raise ApiError(
            f"{key} array holds {len(items)} items; the limit is {max_items} per request.",
            details={"limit": max_items, "received": len(items)},
        )


def _not_an_object(key: str, details: Any) -> ApiError:
    return ApiError(f"The request body must be a JSON object with a {key} array.", details=details)


_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>.*)`")


def _envelope_error(exc, body: bytes, key: str, schema, details, refused: str) -> Exception:
    problem = describe(exc)
    if problem.startswith("item must be a JSON object"):
        return _not_an_object(key, details)
    if problem.startswith((f"{key}:", f"{key} ")):
        return ApiError(f"{key} array is required.", details=details)
    unknown = _UNKNOWN.match(str(exc))
    if unknown is None:
        return ApiError(f"{refused}: {problem}.")
    taken = ", ".join(schema.__struct_fields__)
    name = unknown["name"]
    # Refused as a whole, so reading it again costs nothing worth saving: is the
    # list missing too? Then that is the first thing to say.
    try:
        items = bytes(getattr(msgspec.json.decode(body, type=_lenient(key)), key))
    except msgspec.DecodeError as exc:  # broken after the unknown key
        return ParseError(f"Request body is not valid JSON: {exc}.")
    except RecursionError:
        return too_deep()
    if not items.startswith(b"["):
        return ApiError(
            f"{key} array is required; the body's key {name!r} is not one it takes ({taken}).",
            details=details,
        )
    return ApiError(
        f"The request body's key {name!r} is unknown; it takes {taken}.",
        details={"unknown": [name], "valid": list(schema.__struct_fields__)},
    )


@lru_cache
def _lenient(key: str) -> type[msgspec.Struct]:
    return msgspec.defstruct("Lenient", [(key, msgspec.Raw, _NULL)])


def validate_items(items: Sequence[msgspec.Raw], schema: type[msgspec.Struct]):
    """Decode every raw item once, as ``schema``; return ``(valid, errors)``.

    ``valid`` holds ``(index, item)`` pairs and ``errors`` one :class:`ItemError` per
    invalid item, both in request order. A service that repeats an invalid item's
    identifiers in its error reads them with :func:`echoed`.
    """
    valid, errors = [], []
    decode = msgspec.json.decode
    with nul_free_texts(items):
        for index, raw in enumerate(items):
            try:
                valid.append((index, decode(raw, type=schema)))
            except msgspec.ValidationError as exc:
                errors.append(ItemError(index, describe(exc, schema)))
            except msgspec.DecodeError as exc:  # an item from a file, not from an envelope
                errors.append(ItemError(index, f"item is not valid JSON: {exc}"))
            except RecursionError:
                errors.append(ItemError(index, "item is nested too deeply"))
    return valid, errors


def echoed(raw: msgspec.Raw, names: tuple[str, ...]) -> tuple:
    """The text values of the fields ``names`` of an invalid raw item (None for
    each it lacks or holds as something else), so that its error can repeat them.
    Only invalid items are read this second time, and only these fields are built."""
    try:
        item = msgspec.json.decode(raw, type=_echo_type(names))
    except (msgspec.DecodeError, RecursionError):  # not an object, or not JSON
        return (None,) * len(names)
    return tuple(_text(value) for value in msgspec.structs.astuple(item))


@lru_cache
def _echo_type(names: tuple[str, ...]) -> type[msgspec.Struct]:
    # Raw fields: a value is sliced out, not built, whatever it holds.
    return msgspec.defstruct("Echo", [(name, msgspec.Raw, _NULL) for name in names])


def _text(value: msgspec.Raw) -> str | None:
    return msgspec.json.decode(value) if bytes(value).startswith(b'"') else None


def encode_items(values: Iterable) -> list[msgspec.Raw]:
    """Python values as raw items, for a caller that holds them decoded already
    (tests, the admin)."""
    return [msgspec.Raw(msgspec.json.encode(value)) for value in values]


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
