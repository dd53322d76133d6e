"""The worker's hand-written SQL, in one place.

The ORM can say each of these, but compiling them with it for every item cost more
than running them (docs/benchmarks.md has the profile). The claim query is compiled
by the ORM once per run and only amended, on SQLite, with an ``INDEXED BY`` clause
the ORM has no way to express.
"""

import functools

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from batches.models import UNENDED_BATCH, Batch, Interaction

END = (
    "UPDATE {table} SET status = %s, output = %s, error = %s, error_group = %s, "
    "finished_at = %s, prompt_tokens = %s, completion_tokens = %s, total_tokens = %s "
    "WHERE id = %s AND claimed_by = %s AND status = %s"
)
# A running row given back before it ran (its worker stopped while it waited for a
# rate limit's slot): pending again, for the next worker, as if never started.
PUT_BACK = (
    "UPDATE {table} SET status = 'pending', claimed_by = '', heartbeat_at = NULL, "
    "started_at = NULL, attempts = attempts - 1 "
    "WHERE id = %s AND claimed_by = %s AND status = 'running'"
)
START = (
    "UPDATE {table} SET status = 'running', claimed_by = %s, heartbeat_at = %s, "
    "started_at = %s, attempts = attempts + 1 WHERE id = %s AND status = %s"
)
# PostgreSQL: END, then START only if the end was recorded, as one statement (one
# exchange with the server and its own transaction, not four with BEGIN and COMMIT).
END_AND_START = (
    f"WITH ended AS ({END} RETURNING id), started AS ({START} "
    "AND EXISTS (SELECT 1 FROM ended) RETURNING id) "
    "SELECT (SELECT COUNT(*) FROM ended), (SELECT COUNT(*) FROM started)"
)
# The head of the conversation a thread's claim token holds.
HELD = (
    "SELECT id, conversation, row_number, status, input, chat_id, batch_id FROM {table} "
    "WHERE claimed_by = %s AND status = 'running'"
)
# A claimed conversation's pending rows after its head, and the exchanges before it
# that succeeded (its history when the conversation is resumed).
CONVERSATION = (
    "SELECT id, row_number, input, output FROM {table} WHERE batch_id = %s "
    "AND conversation = %s AND ((row_number > %s AND status = 'pending') "
    "OR (row_number < %s AND status = 'succeeded')) ORDER BY row_number"
)

# Rows running, per batch (the fair order and the concurrency caps). Through the
# small partial index of running rows: SQLite's planner otherwise walks every row of
# the batch through the (batch, row_number) index.
RUNNING = "SELECT batch_id, COUNT(*) FROM {table} {index} WHERE status = 'running' {more}"

# An owner's rows running, over their active batches (the partial index of running
# rows, then each row's batch by its primary key).
OWNER_RUNNING = (
    "SELECT COUNT(*) FROM {table} WHERE status = 'running' AND batch_id IN "
    "(SELECT id FROM {batches} WHERE owner_id = %s) AND heartbeat_at >= %s"
)

# A batch served now; also takes its row lock for the rest of the claim.
STAMP = "UPDATE {batches} SET claimed_at = %s WHERE id = %s"

# A worker's running totals, added. Not once the batch has ended on its own:
# batch_finish has written the exact counts then, and a second worker flushing its
# last items afterwards would count them twice. (A cancelled batch is recounted by
# every worker's batch_finish, which comes after its flush.)
ADD_COUNTS = (
    "UPDATE {batches} SET processed_items = processed_items + %s, "
    "failed_items = failed_items + %s, updated_at = %s WHERE id = %s AND status IN ({counted})"
)
# A cancelled batch's counters are exact from its rows: a late delta would count twice.
COUNTED = UNENDED_BATCH

CLAIM_COLUMNS = ("pk", "conversation", "row_number", "status", "input", "chat_id")
OUTPUT = Interaction._meta.get_field("output")


def sql(template: str) -> str:
    """A statement above with this connection's quoting of the interactions table."""
    return template.format(table=connection.ops.quote_name(Interaction._meta.db_table))


@functools.cache
def _statement(template: str, vendor: str) -> str:
    text = sql(template)
    return text.replace("%s", "?") if vendor == "sqlite" else text


def statement(template: str) -> str:
    """A statement above for the cursor of Progress.ending (SQLite's own cursor
    there, which takes ? for its parameters)."""
    return _statement(template, connection.vendor)


def end_and_start(cursor, ended: list, start: list | None) -> tuple[bool, bool]:
    """A running row ended (END's parameters) and, if that was recorded, the next one
    started (START's, or None): ``(recorded, started)``, through a cursor of
    Progress.ending."""
    if start is not None and connection.vendor == "postgresql":
        cursor.execute(statement(END_AND_START), [*ended, *start])
        recorded, started = cursor.fetchone()
        return recorded == 1, started == 1
    cursor.execute(statement(END), ended)
    if cursor.rowcount != 1 or start is None:
        return cursor.rowcount == 1, False
    cursor.execute(statement(START), start)
    return True, cursor.rowcount == 1


def stamp_claimed(batch_id, now) -> None:
    batches = connection.ops.quote_name(Batch._meta.db_table)
    params = [
        connection.ops.adapt_datetimefield_value(now),
        Batch._meta.pk.get_db_prep_value(batch_id, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(STAMP.format(batches=batches), params)


def add_counts(batch_id, *, succeeded: int, failed: int) -> None:
    if not (succeeded or failed):
        return
    statement = ADD_COUNTS.format(
        batches=connection.ops.quote_name(Batch._meta.db_table),
        counted=", ".join(f"'{status}'" for status in COUNTED),
    )
    params = [
        succeeded,
        failed,
        connection.ops.adapt_datetimefield_value(timezone.now()),
        Batch._meta.pk.get_db_prep_value(batch_id, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def running_counts(*, batch_id=None, since=None) -> dict:
    """Rows running per batch id: of one batch, and only those beating since ``since``."""
    more, params = [], []
    if batch_id is not None:
        more.append("AND batch_id = %s")
        params.append(Interaction._meta.get_field("batch").get_db_prep_value(batch_id, connection))
    if since is not None:
        more.append("AND heartbeat_at >= %s")
        params.append(connection.ops.adapt_datetimefield_value(since))
    index = 'INDEXED BY "interaction_running"' if connection.vendor == "sqlite" else ""
    query = RUNNING.format(
        table=connection.ops.quote_name(Interaction._meta.db_table),
        index=index,
        more=" ".join(more) + " GROUP BY batch_id",
    )
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return {_uuid(pk): n for pk, n in cursor.fetchall()}


def owner_running(owner_id, *, since) -> int:
    """The owner's rows running now, over all their batches, with the owner's row
    locked on PostgreSQL until the claim commits: two claims for one owner count in
    turn."""
    user = get_user_model()
    users = connection.ops.quote_name(user._meta.db_table)
    lock = "" if connection.vendor == "sqlite" else " FOR UPDATE"
    statement = OWNER_RUNNING.format(
        table=connection.ops.quote_name(Interaction._meta.db_table),
        batches=connection.ops.quote_name(Batch._meta.db_table),
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {users} WHERE id = %s{lock}", [owner_id])
        cursor.execute(statement, [owner_id, connection.ops.adapt_datetimefield_value(since)])
        return cursor.fetchone()[0]


def _uuid(value):
    return Interaction._meta.get_field("batch").target_field.to_python(value)


def claim_sql(queryset, index: str) -> tuple[str, list]:
    """SQL and parameters of a claim query: its first row, locked on PostgreSQL
    (skipping rows other claims hold). On SQLite its partial ``index`` is named:
    without ANALYZE statistics the planner walks every finished row of the batch
    instead, and a claim then cost as much as the item it claimed."""
    # select_for_update compiles only inside a transaction.
    with transaction.atomic():
        queryset = queryset.select_for_update(skip_locked=True).values_list(*CLAIM_COLUMNS)[:1]
        query, params = queryset.query.sql_with_params()
    if connection.vendor == "sqlite":
        table = connection.ops.quote_name(Interaction._meta.db_table)
        query = query.replace(f"FROM {table} WHERE", f'FROM {table} INDEXED BY "{index}" WHERE', 1)
    return query, list(params)


def from_json(value):
    """A JSON column's value as read by a raw cursor, decoded as the ORM would."""
    return OUTPUT.from_db_value(value, None, connection)


def to_json(value):
    return OUTPUT.get_db_prep_value(value, connection)
