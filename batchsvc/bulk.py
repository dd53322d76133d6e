"""The bulk engine every bulk endpoint shares.

A bulk request is an envelope ``{"<key>": [item, ...]}``. The engine:

1. checks the envelope (present, a non-empty list, within the item limit);
2. validates every item against one msgspec schema, collecting errors by index;
3. writes the valid items in one statement with ``INSERT ... ON CONFLICT DO NOTHING
   RETURNING``, so that the database's unique constraints, not a racy pre-check,
   decide which items are new. Rows go in sorted key order so that two concurrent
   batches lock index entries in the same order and cannot deadlock on PostgreSQL.

Resources (runs, log lines) decide what a conflict means for them.
"""

import datetime as dt
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from itertools import chain
from typing import Any

import msgspec
import msgspec.inspect
import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends import utils as db_utils

from batchsvc.errors import ApiError
from batchsvc.parsers import decode_json


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


def refusing(pattern: str, characters: str, problem: str) -> msgspec.Meta:
    """Metadata for a text field that must not hold any of ``characters``, for an
    ``Annotated`` type beside its other ``msgspec.Meta``. The schema documents it
    as ``pattern``; the struct's ``__post_init__`` calls :func:`refuse_characters`
    to check it. (msgspec's own ``pattern`` runs a regular expression per field and
    allocates a match: 15 % of a 1000-run batch, where one ``in`` per field is
    close to free.)"""
    return msgspec.Meta(
        extra_json_schema={"pattern": pattern}, extra={"refuse": (characters, problem)}
    )


NUL_FREE = refusing(r"^[^\x00]*$", "\x00", "must not contain the NUL character")
"""Text PostgreSQL can store: anything but the NUL character."""
NUL_AND_SLASH_FREE = refusing(r"^[^\x00/]*$", "\x00/", "must not contain / or the NUL character")
"""The same, for an identifier that appears in URL paths (a run_id): no ``/`` either."""
PATTERN_PROBLEMS = {}  # pattern -> what describe() says when a value does not match


def refuse_characters(item: msgspec.Struct) -> None:
    """ValueError naming the first field of ``item`` that holds a character its
    :func:`refusing` metadata refuses."""
    for name, characters, problem in _refusals(type(item)):
        value = getattr(item, name)
        if value:  # None and msgspec.UNSET are false
            for character in characters:
                if character in value:
                    raise ValueError(f"{name}: {problem}")


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


def describe(exc: msgspec.ValidationError) -> str:
    """Turn msgspec's message into ``"<field>: <problem>"``."""
    match = _AT_PATH.match(str(exc))
    message, path = match["message"], match["path"]
    missing = _MISSING.match(message)
    if missing:
        field = f"{path}.{missing['field']}" if path else missing["field"]
        return f"{field} is required"
    for pattern, problem in PATTERN_PROBLEMS.items():
        if repr(pattern) in message:
            message = problem
            break
    if not path and message.startswith("Expected `object`, got `"):
        return f"item must be a JSON object, not {message.rsplit(' ', 1)[-1]}"
    return f"{path}: {message}" if path else message


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


class JSONBody(bytes):
    """A bulk request body, kept as bytes by :class:`BulkJSONParser`."""


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
            errors.append(ItemError(index, describe(exc)))
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


def max_query_params() -> int:
    """How many ``%s`` one statement may carry on this database."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    if connection.vendor == "postgresql":
        return 65535
    return connection.features.max_query_params or 999


_INTEGER_KINDS = frozenset(
    ["IntegerField", "BigIntegerField", "SmallIntegerField", "AutoField", "BigAutoField"]
)


def _column_converter(field: models.Field, conn):
    """A function turning one column of validated Python values into what
    ``field`` stores, as ``field.get_db_prep_save`` would for each value: 17 of
    those calls per row cost more than everything else in a batch, so the common
    types get a direct path, applied a column at a time."""
    if field.is_relation:  # a foreign key stores its target's value
        field = field.target_field
    kind = field.get_internal_type()
    if kind in _INTEGER_KINDS:
        return None  # already an int, from the schema or the resource's own code
    if kind in ("CharField", "TextField"):
        if field.null:
            return None  # already a str or None, validated by the item schema
        # Django's convention: absent text is stored as '', not NULL.
        return lambda column: ["" if value is None else value for value in column]
    if kind == "JSONField":
        encode = _json.encode  # JSON text: SQLite stores it, PostgreSQL casts it to jsonb
        return lambda column: [
            value if value is None or type(value) is JSONText else encode(value).decode()
            for value in column
        ]
    if kind == "UUIDField" and not conn.features.has_native_uuid_field:
        return lambda column: [None if value is None else value.hex for value in column]
    if kind == "UUIDField" or (kind == "DateTimeField" and conn.vendor == "postgresql"):
        return None  # psycopg sends UUIDs and aware datetimes as they are
    if kind == "DateTimeField" and conn.vendor == "sqlite" and str(conn.timezone) == "UTC":
        return lambda column: list(map(_sqlite_datetime, column))
    prep = partial(field.get_db_prep_save, connection=conn)
    return lambda column: list(map(prep, column))


@lru_cache(maxsize=4096)  # a batch repeats its timestamps (created_at, start_time...)
def _sqlite_datetime(value):
    # Django stores naive UTC text on SQLite: str() of the naive datetime.
    return None if value is None else str(value.astimezone(dt.UTC).replace(tzinfo=None))


_json = msgspec.json.Encoder()


def insert_ignoring_conflicts(
    model: type[models.Model],
    rows: Sequence[dict] | Sequence[Sequence],
    key: str,
    *,
    columns: Sequence[str] | None = None,
) -> set[int]:
    """Insert ``rows``, skipping any that break a unique constraint; return the
    positions in ``rows`` of those actually inserted.

    Rows are dicts (field name → value), or tuples of values in the order of the
    field names in ``columns`` (cheaper: no dict per row). ``key`` names a unique
    field: rows are inserted in its order and it is what the database returns for
    each inserted row.
    """
    if not rows:
        return set()
    if columns is None:
        columns = list(rows[0])
        rows = [tuple(map(row.__getitem__, columns)) for row in rows]
    opts = model._meta
    conn = connections[DEFAULT_DB_ALIAS]
    fields = [opts.get_field(name) for name in columns]
    table = list(zip(*rows, strict=True))  # a column at a time is several times faster
    for at, field in enumerate(fields):
        if (convert := _column_converter(field, conn)) is not None:
            table[at] = convert(table[at])
    keys = table[list(columns).index(key)]
    order = sorted(range(len(keys)), key=lambda i: str(keys[i]))
    position_of = {keys[i]: i for i in order}

    insert = _insert_unnest if conn.vendor == "postgresql" else _insert_values
    quote = conn.ops.quote_name
    head = f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(f.column) for f in fields)})"
    tail = f"ON CONFLICT DO NOTHING RETURNING {quote(opts.get_field(key).column)}"
    with _driver_cursor(conn) as cursor:
        returned = insert(cursor, head, tail, fields, table, order)
    return {position_of[key_value] for key_value in returned}


def _driver_cursor(db) -> db_utils.CursorWrapper:
    """A cursor of the driver's own, wrapped like Django's so that the query is
    still logged, counted and has its errors translated, but taking the driver's
    own placeholders as they are. Django's cursors rewrite every query on the way
    (SQLite: each ``%s`` to ``?`` with a regular expression; PostgreSQL: client-side
    binding that escapes every array element), which on a 17,000-parameter insert
    cost more than the database's own work."""
    db.ensure_connection()
    native = psycopg.Cursor(db.connection) if db.vendor == "postgresql" else db.connection.cursor()
    return (_DebugCursor if db.queries_logged else db_utils.CursorWrapper)(native, db)


class _DebugCursor(db_utils.CursorDebugWrapper):
    """Logs the query as sent, placeholders and parameters apart (as Django does for
    ``executemany``): Django's SQLite backend can spell out only ``%s`` queries."""

    def execute(self, sql, params=None):
        with self.debug_sql(sql, params):
            return db_utils.CursorWrapper.execute(self, sql, params)


def _insert_values(cursor, head, tail, fields, table, order) -> list:
    """SQLite: ``INSERT ... VALUES (?, ...), (?, ...)``, as many rows per statement
    as it takes parameters."""
    rows = list(zip(*table, strict=True))
    row = "(" + ", ".join(["?"] * len(fields)) + ")"
    per_statement = max(1, max_query_params() // len(fields))
    returned = []
    for start in range(0, len(order), per_statement):
        chunk = order[start : start + per_statement]
        values = ", ".join([row] * len(chunk))
        cursor.execute(
            f"{head} VALUES {values} {tail}",
            list(chain.from_iterable(map(rows.__getitem__, chunk))),
        )
        returned += [key_value for (key_value,) in cursor.fetchall()]
    return returned


def _insert_unnest(cursor, head, tail, fields, table, order) -> list:
    """PostgreSQL: one array parameter per column, ``INSERT ... SELECT FROM unnest``,
    bound on the server and in binary (``%b``). A 17,000-parameter VALUES statement
    spends more time in psycopg's query parsing than in the database; 17 arrays
    cost nothing to parse."""
    names = [f"c{at}" for at in range(len(fields))]
    arrays = ", ".join(f"%b::{_db_type(field, cursor.db)}[]" for field in fields)
    cursor.execute(
        f"{head} SELECT {', '.join(names)} FROM unnest({arrays}) WITH ORDINALITY "
        f"AS rows ({', '.join(names)}, position) ORDER BY position {tail}",
        [[column[i] for i in order] for column in table],
    )
    return [key_value for (key_value,) in cursor.fetchall()]


def _db_type(field: models.Field, conn) -> str:
    return field.rel_db_type(conn) if field.is_relation else field.db_type(conn)


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
