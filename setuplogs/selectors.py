"""Reads for log lines."""

import json

from django.db import connection

from batchsvc.api.inserts import driver_cursor
from setuplogs.models import LogEntry
from traces.models import Run
from traces.selectors import run_for


def run_for_logs(request, run_id: str, *, write: bool) -> Run:
    """The run whose lines ``request``'s user reads (its ``owner`` query parameter
    choosing among owners) or writes, or a 404 like a missing run's.

    The 404 names the run in ``details`` so that a client can tell an unknown run
    from a server without the endpoint (batchsvc_client.LogBatcher does).
    """
    return run_for(
        request.user,
        run_id,
        owner=None if write else request.query_params.get("owner"),
        write=write,
        runs=Run.objects.only("pk", "run_id", "status", "owner"),
    )


def last_seq(run: Run) -> int:
    """The run's last seq, 0 for none, from the (run, seq) index's last entry."""
    last = LogEntry.objects.of_run(run).order_by("-seq").values_list("seq", flat=True).first()
    return last or 0


def stored_client_ids(run: Run, client_ids: list[str]) -> set[str]:
    """Which of ``client_ids`` the run holds already, in one statement with one
    parameter however many ids (a 1000-id ``IN`` list costs more in Django's
    parameter handling than the search). The condition repeats the partial unique
    index's word for word: SQLite uses a partial index only when the query states
    its condition, which a bound parameter never does."""
    if not client_ids:
        return set()
    if connection.vendor == "postgresql":
        # The driver's own cursor, the ids bound as one binary array on the server:
        # Django's cursor would quote each of them into the statement's text.
        ids, params, cursor = "SELECT unnest(%b::text[])", [client_ids], driver_cursor(connection)
    else:
        ids, params, cursor = "SELECT value FROM json_each(%s)", [json.dumps(client_ids)], None
    with cursor or connection.cursor() as cursor:
        cursor.execute(
            f"SELECT client_id FROM {LogEntry._meta.db_table} WHERE run_id = %s "
            f"AND NOT (client_id = '') AND client_id IN ({ids})",
            [run.pk, *params],
        )
        return {client_id for (client_id,) in cursor.fetchall()}


def log_text(run: Run, *, chunk_size: int = 2000):
    """The run's whole log as lines of text, ``seq timestamp LEVEL message``, read
    in chunks (bounded memory however long the log)."""
    lines = (
        LogEntry.objects.of_run(run)
        .order_by("seq")
        .values_list("seq", "timestamp", "level", "message")
        .iterator(chunk_size=chunk_size)
    )
    for seq, timestamp, level, message in lines:
        yield f"{seq}\t{timestamp.isoformat()}\t{level.upper()}\t{message}\n"
