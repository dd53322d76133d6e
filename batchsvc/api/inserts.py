"""The driver-level INSERT behind every bulk write: ``INSERT ... ON CONFLICT DO
NOTHING RETURNING``, so that the database's unique constraints, not a racy
pre-check, decide which rows are new. Rows go in sorted key order so that two
concurrent batches lock index entries in the same order and cannot deadlock on
PostgreSQL. Values are converted a column at a time, for the field types below.

On PostgreSQL a large batch goes by binary COPY straight into the table when no
row of it is stored yet, else by binary COPY into a temporary staging table, then
one ``INSERT ... SELECT`` from it; a small one as one array per column.
"""

import datetime as dt
import hashlib
import sqlite3
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from functools import lru_cache, partial
from itertools import chain
from operator import itemgetter

import msgspec
import psycopg
from django.db import (
    DEFAULT_DB_ALIAS,
    IntegrityError,
    connection,
    connections,
    models,
    transaction,
)
from django.db.backends import utils as db_utils

from batchsvc.api.schemas import JSONText


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
    columns, rows = _columns_and_tuples(rows, columns)
    conn, fields, table, order, keys = _prepare(model, rows, key, columns)
    insert = _insert_values
    if conn.vendor == "postgresql":
        insert = _insert_staged if len(order) >= STAGE_FROM_ROWS else _insert_unnest
        if insert is _insert_staged and _copied(conn, model, fields, table, order):
            return set(range(len(rows)))
    head, returning = _statement(model, fields, key)
    # The staging table empties at commit, whatever happens: its COPY and INSERT need
    # one transaction.
    with transaction.atomic(savepoint=False), driver_cursor(conn) as cursor:
        returned = insert(cursor, head, f"ON CONFLICT DO NOTHING {returning}", fields, table, order)
    position_of = dict(zip(keys, range(len(keys)), strict=True))
    return {position_of[key_value] for key_value in returned}


def insert_new(
    model: type[models.Model], rows: Sequence[Sequence], key: str, *, columns: Sequence[str]
) -> None:
    """Insert ``rows``, none of which may break a unique constraint: the caller has
    ruled conflicts out (under a lock), and a row that breaks one anyway fails the
    statement with an IntegrityError, storing none. Arguments as for
    :func:`insert_ignoring_conflicts`, rows as tuples.

    With no conflict to handle, a large batch on PostgreSQL goes by binary COPY
    straight into the table, as a bulk load would."""
    if not rows:
        return
    conn, fields, table, order, _ = _prepare(model, rows, key, columns)
    head, returning = _statement(model, fields, key)
    if conn.vendor == "postgresql" and len(order) >= STAGE_FROM_ROWS:
        with driver_cursor(conn) as cursor:
            _copy_rows(cursor, model._meta.db_table, fields, table, order)
        return
    insert = _insert_unnest if conn.vendor == "postgresql" else _insert_values
    with driver_cursor(conn) as cursor:
        insert(cursor, head, returning, fields, table, order)


def _copied(conn, model, fields, table, order) -> bool:
    """Try a large batch as a binary COPY straight into the table, as a bulk load
    would, and say whether it went in. When a row breaks a unique constraint (stored
    already: a retry, or a concurrent batch's) the COPY is undone, and the staged
    ``ON CONFLICT`` insert sorts the rows out: new rows, the usual case, so pay
    neither the staging nor the conflict handling."""
    try:
        with transaction.atomic(), driver_cursor(conn) as cursor:
            _copy_rows(cursor, model._meta.db_table, fields, table, order)
    except IntegrityError:
        return False
    return True


def _columns_and_tuples(rows, columns):
    if columns is None:
        columns = list(rows[0])
        rows = [tuple(map(row.__getitem__, columns)) for row in rows]
    return columns, rows


def _prepare(model, rows, key, columns):
    """The connection, the fields, the values a column at a time as the database
    stores them, the rows' order by ``key`` and the keys."""
    conn = connections[DEFAULT_DB_ALIAS]
    fields = [model._meta.get_field(name) for name in columns]
    table = list(zip(*rows, strict=True))  # a column at a time is several times faster
    for at, field in enumerate(fields):
        if (convert := _column_converter(field, conn)) is not None:
            table[at] = convert(table[at])
    keys = table[list(columns).index(key)]
    order = sorted(range(len(keys)), key=_sort_keys(keys).__getitem__)
    return conn, fields, table, order, keys


def _statement(model, fields, key) -> tuple[str, str]:
    """The ``INSERT INTO table (columns)`` head and the ``RETURNING key`` tail."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    opts = model._meta
    head = f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(f.column) for f in fields)})"
    return head, f"RETURNING {quote(opts.get_field(key).column)}"


def _sort_keys(keys: Sequence) -> Sequence:
    """What rows are ordered by: their keys, UUIDs by their number (the order of
    their text, without making the text). Any order does, as long as every batch
    uses the same."""
    if isinstance(keys[0], uuid.UUID):
        return [key.int for key in keys]
    return keys


STAGE_FROM_ROWS = 50
"""From this many rows on, PostgreSQL inserts go by COPY, into the table or a staging
table (below it, COPY's extra round trips cost more than the arrays they save)."""


def driver_cursor(db) -> db_utils.CursorWrapper:
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
        [list(column) for column in _in_order(table, order)],  # arrays: lists, not tuples
    )
    return [key_value for (key_value,) in cursor.fetchall()]


def _insert_staged(cursor, head, tail, fields, table, order) -> list:
    """PostgreSQL: binary COPY into a temporary table of this connection's, then one
    statement that empties it into the target in the rows' order. COPY's binary rows
    are encoded by psycopg's C code, where arrays of the same values are built in
    Python, and the server reads them without parsing a statement's worth of
    parameters. Emptying it in the same statement leaves nothing behind for the next
    batch of one transaction (an atomic import, chunk after chunk)."""
    db = cursor.db
    types = [_db_type(field, db) for field in fields]
    stage = _staging_table(cursor, head, types)
    names = [f"c{at}" for at in range(len(fields))]
    columns = [*_in_order(table, order), range(len(order))]
    _copy(cursor, stage, [*names, "position"], [*map(_staged_type, types), "int4"], columns)
    casts = ", ".join(f"{name}::{kind}" for name, kind in zip(names, types, strict=True))
    cursor.execute(
        f"WITH staged AS (DELETE FROM {stage} RETURNING *) "
        f"{head} SELECT {casts} FROM staged ORDER BY position {tail}"
    )
    return [key_value for (key_value,) in cursor.fetchall()]


def _copy_rows(cursor, table: str, fields, values: list[Sequence], order) -> None:
    """PostgreSQL: binary COPY of the rows, in ``order``, straight into ``table``."""
    db = cursor.db
    quote = db.ops.quote_name
    names = [quote(field.column) for field in fields]
    types = [_db_type(field, db).partition("(")[0].strip() for field in fields]
    cursor.adapters.register_dumper(None, _JSONTextDumper)  # this cursor's COPY only
    _copy(cursor, quote(table), names, types, _in_order(values, order))


class _JSONTextDumper(psycopg.adapt.Dumper):
    """JSON text, as the column converters leave it, as a binary ``jsonb`` value:
    its format version, then the text (psycopg's own dumper would encode the text
    as a JSON string)."""

    format = psycopg.pq.Format.BINARY
    oid = psycopg.postgres.types["jsonb"].oid

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()


def _copy(cursor, table: str, names: list[str], types: list[str], columns: list) -> None:
    """Binary COPY of ``columns`` (one sequence of values per name) into ``table``."""
    sql = f"COPY {table} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
    with _as_django_would(cursor, sql), cursor.copy(sql) as copy:
        copy.set_types(types)
        write = copy.write_row
        for row in zip(*columns, strict=True):
            write(row)


def _as_django_would(cursor, sql: str) -> ExitStack:
    """Around a statement Django's cursor wrapper does not run itself (COPY): its
    errors translated into Django's, and it is logged and counted when queries are."""
    stack = ExitStack()
    stack.enter_context(cursor.db.wrap_database_errors)
    if isinstance(cursor, db_utils.CursorDebugWrapper):
        stack.enter_context(cursor.debug_sql(sql))
    return stack


def _in_order(table: list[Sequence], order: list[int]) -> list[Sequence]:
    """Each column of ``table`` with its values in ``order``."""
    if len(order) == 1:
        return [[column[order[0]]] for column in table]
    return list(map(itemgetter(*order), table))


def _staging_table(cursor, head: str, types: list[str]) -> str:
    """The name of a temporary table with a column per value (and the row's
    position), created in this session when missing. Temporary tables are the
    session's own, so concurrent requests never see each other's rows, and ON
    COMMIT DELETE ROWS empties it whatever becomes of the transaction."""
    shape = hashlib.sha256("|".join([head, *types]).encode()).hexdigest()[:16]
    name = f"batchsvc_stage_{shape}"
    session = cursor.db.connection
    made = session.__dict__.setdefault("batchsvc_staging_tables", set())
    if name not in made:
        columns = ", ".join(f"c{at} {_staged_type(kind)}" for at, kind in enumerate(types))
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ({columns}, position int4) "
            "ON COMMIT DELETE ROWS"
        )
        # Known to exist only once created for good: a rollback takes the table with it.
        transaction.on_commit(partial(made.add, name), using=cursor.db.alias)
    return name


def _staged_type(db_type: str) -> str:
    """The staging column type for a target column: the type without its modifiers
    (the cast into the target checks lengths), and JSON as text, which the cast
    parses once, as the server would parse a jsonb value anyway."""
    base = db_type.partition("(")[0].strip()
    return "text" if base in ("json", "jsonb") else base


def _db_type(field: models.Field, conn) -> str:
    return field.rel_db_type(conn) if field.is_relation else field.db_type(conn)
