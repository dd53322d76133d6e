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

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from django.db import connection, models

from batchsvc.errors import ApiError


@dataclass(frozen=True, slots=True)
class ItemError:
    index: int
    error: str


def parse_envelope(data: Any, key: str, max_items: int) -> list:
    """Return the item list of a bulk body, or raise a 400 that says what is wrong."""
    if not isinstance(data, dict):
        raise ApiError(f"The request body must be a JSON object with a {key} array.")
    items = data.get(key)
    if not isinstance(items, list):
        raise ApiError(f"{key} array is required.")
    if not items:
        raise ApiError(f"{key} array is required and must hold at least one item.")
    if len(items) > max_items:
        raise ApiError(
            f"{key} array holds {len(items)} items; the limit is {max_items} per request.",
            details={"limit": max_items, "received": len(items)},
        )
    return items


NO_NUL = r"^[^\x00]*$"
"""A msgspec ``pattern`` for text PostgreSQL can store: anything but the NUL character."""

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
    if repr(NO_NUL) in message:
        message = "must not contain the NUL character"
    if not path and message.startswith("Expected `object`, got `"):
        return f"item must be a JSON object, not {message.rsplit(' ', 1)[-1]}"
    return f"{path}: {message}" if path else message


def validate_items(items: Sequence, schema: type[msgspec.Struct]):
    """Convert every raw item to ``schema``; return ``(valid, errors)``.

    ``valid`` holds ``(index, item)`` pairs and ``errors`` one :class:`ItemError` per
    invalid item, both in request order.
    """
    valid, errors = [], []
    convert = msgspec.convert
    for index, raw in enumerate(items):
        try:
            valid.append((index, convert(raw, schema)))
        except msgspec.ValidationError as exc:
            errors.append(ItemError(index, describe(exc)))
    return valid, errors


def max_query_params() -> int:
    """How many ``%s`` one statement may carry on this database."""
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        return connection.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    if connection.vendor == "postgresql":
        return 65535
    return connection.features.max_query_params or 999


def db_value(model: type[models.Model], field_name: str, value):
    return model._meta.get_field(field_name).get_db_prep_save(value, connection)


def insert_ignoring_conflicts(
    model: type[models.Model], rows: Sequence[dict], key: str
) -> set[int]:
    """Insert ``rows`` (field name → value), skipping any that break a unique
    constraint; return the positions in ``rows`` of those actually inserted.

    ``key`` names a unique field: rows are inserted in its order and it is what the
    database returns for each inserted row.
    """
    if not rows:
        return set()
    opts = model._meta
    fields = [opts.get_field(name) for name in rows[0]]
    key_column = opts.get_field(key).column
    prepared = [
        [field.get_db_prep_save(row[field.name], connection) for field in fields] for row in rows
    ]
    key_at = [field.name for field in fields].index(key)
    order = sorted(range(len(rows)), key=lambda i: str(prepared[i][key_at]))
    position_of = {prepared[i][key_at]: i for i in order}

    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    per_statement = max(1, max_query_params() // len(fields))
    inserted: set[int] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(order), per_statement):
            chunk = order[start : start + per_statement]
            sql = (
                f"INSERT INTO {quote(opts.db_table)} ({columns}) VALUES "
                + ", ".join([placeholders] * len(chunk))
                + f" ON CONFLICT DO NOTHING RETURNING {quote(key_column)}"
            )
            cursor.execute(sql, [value for i in chunk for value in prepared[i]])
            inserted.update(position_of[returned] for (returned,) in cursor.fetchall())
    return inserted


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
