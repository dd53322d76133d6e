"""msgspec helpers every app's ``schemas.py`` uses: characters a text field refuses,
timestamps in UTC, JSON kept as the text sent, and error messages a client can read.

Pure: no models, no requests, no database.
"""

import contextvars
import datetime as dt
import difflib
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from operator import attrgetter

import msgspec
import msgspec.inspect


def refusing(pattern: str, characters: str, problem: str) -> msgspec.Meta:
    """Metadata for a text field that must not hold any of ``characters``, for an
    ``Annotated`` type beside its other ``msgspec.Meta``. The schema documents it
    as ``pattern``; the struct's ``__post_init__`` calls :func:`refuse_characters`
    to check it. (msgspec's own ``pattern`` runs a regular expression per field and
    allocates a match, where one ``in`` per field is close to free.)"""
    return msgspec.Meta(
        extra_json_schema={"pattern": pattern}, extra={"refuse": (characters, problem)}
    )


NUL_FREE = refusing(r"^[^\x00]*$", "\x00", "must not contain the NUL character")
"""Text PostgreSQL can store: anything but the NUL character."""


NUL_AND_SLASH_FREE = refusing(r"^[^\x00/]*$", "\x00/", "must not contain / or the NUL character")
"""The same, for an identifier that appears in URL paths (a run_id): no ``/`` either."""


# True while items whose JSON text holds no NUL are decoded (see nul_free_texts).
_NUL_FREE = contextvars.ContextVar("nul_free", default=False)


@contextmanager
def nul_free_texts(texts: Sequence[bytes]) -> Iterator[None]:
    """While decoding ``texts``: when none holds a NUL, as a ``\\u0000`` escape or a
    byte, no text field decoded from them can, and :func:`refuse_characters` does
    not look for one (half the cost of checking a log line)."""
    token = _NUL_FREE.set(_holds_no_nul(texts))
    try:
        yield
    finally:
        _NUL_FREE.reset(token)


def _holds_no_nul(texts: Sequence[bytes]) -> bool:
    # One search through a copy of them all: eight times faster than one a text. The
    # copy is let go here, before the texts are decoded.
    joined = b"".join(texts)
    return b"\\u0000" not in joined and b"\x00" not in joined


def refuse_characters(item: msgspec.Struct) -> None:
    """ValueError naming the first field of ``item`` that holds a character its
    :func:`refusing` metadata refuses."""
    groups = _GROUPS.get(type(item)) or _groups(type(item))
    for values_of, characters in groups[_NUL_FREE.get()]:
        # One search per character through the group's values joined, rather than
        # one per field: the common case, nothing refused, in a few C calls.
        text = "".join(filter(None, values_of(item)))  # None and msgspec.UNSET are false
        if any(character in text for character in characters):
            _refuse_first(item)


def _refuse_first(item: msgspec.Struct) -> None:
    for name, characters, problem in _refusals(type(item)):
        value = getattr(item, name)
        if value and any(character in value for character in characters):
            raise ValueError(f"{name}: {problem}")


# Per schema: the fields refusing the same characters, with a getter of their
# values; [0] for any values, [1] for values known to hold no NUL. A dict, not
# lru_cache: it is read for every item of every batch.
_GROUPS: dict[type, tuple[list, list]] = {}


def _groups(schema: type[msgspec.Struct]) -> tuple[list, list]:
    found = []
    for nul_free in (False, True):
        groups: dict[str, list[str]] = {}
        for name, characters, _problem in _refusals(schema):
            if nul_free:
                characters = characters.replace("\x00", "")
            if characters:
                groups.setdefault(characters, []).append(name)
        found.append([(_values_getter(names), chars) for chars, names in groups.items()])
    _GROUPS[schema] = (found[0], found[1])
    return _GROUPS[schema]


def _values_getter(names: list[str]) -> Callable:
    get = attrgetter(*names)
    return get if len(names) > 1 else lambda item: (get(item),)


@lru_cache
def _refusals(schema: type[msgspec.Struct]) -> list[tuple[str, str, str]]:
    refusals = []
    for field in msgspec.inspect.type_info(schema).fields:
        kinds = getattr(field.type, "types", (field.type,))  # a union, or one type
        for kind in kinds:
            if isinstance(kind, msgspec.inspect.Metadata) and "refuse" in (kind.extra or {}):
                refusals.append((field.name, *kind.extra["refuse"]))
    return refusals


_AT_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$\.?(?P<path>[^`]*)`)?$", re.DOTALL)


_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<field>.*)`$", re.DOTALL)


def describe(exc: msgspec.ValidationError, schema: type[msgspec.Struct] | None = None) -> str:
    """Turn msgspec's message into ``"<field>: <problem>"``. With the ``schema``
    that refused the value, a field declared with :func:`patterned` says its
    problem in words rather than as the regular expression it failed, and an
    unknown key is named with the field it probably meant, or the valid ones."""
    match = _AT_PATH.match(str(exc))
    message, path = match["message"], match["path"]
    missing = _MISSING.match(message)
    if missing:
        field = f"{path}.{missing['field']}" if path else missing["field"]
        return f"{field} is required"
    unknown = _UNKNOWN.match(message)
    if unknown and schema is not None and not path:
        return unknown_key(unknown["field"], schema.__struct_fields__)
    if schema is not None and path and "matching regex" in message:
        message = _problems(schema).get(path.rpartition(".")[2], message)
    if not path and message.startswith("Expected `object`, got `"):
        return f"item must be a JSON object, not {message.rsplit(' ', 1)[-1]}"
    return f"{path}: {message}" if path else message


def unknown_key(name: str, fields: Sequence[str]) -> str:
    """The sentence for a key no field has: the field a camelCase or near spelling
    meant (``traceData``: did you mean trace_data?), else the valid keys."""
    meant = guess(name, fields)
    if meant is not None:
        return f"unknown key {name!r} (did you mean {meant}?)"
    return f"unknown key {name!r}; the keys are: {', '.join(fields)}"


def guess(name: str, fields: Sequence[str]) -> str | None:
    """The field ``name`` probably stands for: its snake_case spelling, or a close one."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().replace("-", "_")
    if snake in fields:
        return snake
    close = difflib.get_close_matches(snake, fields, n=1, cutoff=0.8)
    return close[0] if close else None


def patterned(pattern: str, problem: str, **meta) -> msgspec.Meta:
    """Metadata for a text field checked by a regular expression, with the words
    :func:`describe` uses when a value does not match."""
    return msgspec.Meta(pattern=pattern, extra={"problem": problem}, **meta)


@lru_cache
def _problems(schema: type[msgspec.Struct]) -> dict[str, str]:
    problems = {}
    for field in msgspec.inspect.type_info(schema).fields:
        for kind in getattr(field.type, "types", (field.type,)):
            if isinstance(kind, msgspec.inspect.Metadata) and "problem" in (kind.extra or {}):
                problems[field.name] = kind.extra["problem"]
    return problems


def as_utc(value: dt.datetime | None, name: str) -> dt.datetime | None:
    """A validated timestamp in UTC, a naive one read as UTC; ValueError (so a failed
    item, not a 500 at insert time) when UTC cannot hold it (year 1 at +01:00)."""
    if value is None or value.tzinfo is dt.UTC:
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError(f"{name} is out of range once converted to UTC") from None


class JSONText(str):
    """A JSON document kept as the text the client sent (from a ``msgspec.Raw``
    field): stored as it is, never decoded and encoded again."""


_JSON_KINDS = {b"[": "array", b'"': "str", b"t": "bool", b"f": "bool"}


def json_object_text(raw: msgspec.Raw, name: str) -> JSONText | None:
    """A ``msgspec.Raw`` field holding a JSON object or null, as :class:`JSONText`
    (None for null); ValueError for anything else, or for a NUL character."""
    text = bytes(raw)
    if text == b"null":
        return None
    if not text.startswith(b"{"):
        got = _JSON_KINDS.get(text[:1], "number")
        raise ValueError(f"{name}: Expected `object | null`, got `{got}`")
    refuse_nul_in_json(text, name)
    return JSONText(text.decode())


def refuse_nul_in_json(text: bytes, name: str) -> None:
    """PostgreSQL's jsonb refuses the NUL character anywhere in a document; in JSON
    text it can only be written as the escape \\u0000."""
    if b"\\u0000" in text:
        raise ValueError(f"{name} must not contain the NUL character (\\u0000)")
