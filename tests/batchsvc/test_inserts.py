"""The driver-level INSERT converts each field type the way the ORM would: what it
writes reads back through the ORM as the values it was given. (It writes the
columns it is given and no defaults: callers name every column.)"""

import datetime as dt
import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from batches.models import Interaction
from batchsvc.api.inserts import STAGE_FROM_ROWS, insert_ignoring_conflicts, insert_new
from batchsvc.api.schemas import JSONText
from tests.batches.factories import make_batch
from traces.models import Run

pytestmark = pytest.mark.django_db

PLUS_TWO = dt.timezone(dt.timedelta(hours=2))


def test_every_run_field_type_round_trips(alice):
    event_ids = [uuid.uuid4(), uuid.uuid4()]
    columns = [
        *("event_id", "run_id", "parent_run_id", "agent_name", "job_type", "product"),
        *("git_repo", "git_branch", "git_commit"),
        *("status", "start_time", "end_time", "metrics_json", "context_json"),
        *("error_summary", "owner", "created_at", "updated_at"),
    ]
    start = dt.datetime(2026, 1, 28, 12, 30, 15, 123456, tzinfo=PLUS_TWO)
    rows = [
        # every value given: a JSON object as text (as the API keeps it), a time zone not UTC
        (event_ids[0], "full", "parent", "agent", "job", "p", "r", "b", "c", "success", start,
         start + dt.timedelta(seconds=5), JSONText('{"pages": 12, "ratio": 0.5}'),
         {"nested": {"a": [1, None, "ü"]}}, "boom", alice.pk, start, start),
        # the optional ones absent: None for text that stores "", NULL for the rest
        (event_ids[1], "empty", None, "agent", "job", None, None, None, None, "running",
         start, None, None, None, None, alice.pk, start, start),
    ]  # fmt: skip
    inserted = insert_ignoring_conflicts(Run, rows, key="event_id", columns=columns)
    assert inserted == {0, 1}

    full = Run.objects.get(event_id=event_ids[0])
    assert (full.run_id, full.parent_run_id, full.product, full.error_summary) == (
        "full",
        "parent",
        "p",
        "boom",
    )
    assert full.start_time == start and full.start_time.utcoffset() == dt.timedelta(0)
    assert full.end_time == start + dt.timedelta(seconds=5)
    assert full.metrics_json == {"pages": 12, "ratio": 0.5}
    assert full.context_json == {"nested": {"a": [1, None, "ü"]}}
    assert full.owner == alice
    empty = Run.objects.get(event_id=event_ids[1])
    assert (empty.parent_run_id, empty.product, empty.error_summary) == ("", "", "")
    assert (empty.end_time, empty.metrics_json, empty.context_json) == (None, None, None)


def test_a_conflicting_row_is_skipped_and_the_others_inserted(alice):
    columns = ["event_id", "run_id", "agent_name", "job_type", "start_time", "owner"]
    columns += ["parent_run_id", "product", "git_repo", "git_branch", "git_commit"]
    columns += ["status", "error_summary", "created_at", "updated_at"]
    now = dt.datetime.now(dt.UTC)

    def row(event_id, run_id):
        return (event_id, run_id, "x", "y", now, alice.pk, *[""] * 5, "running", "", now, now)

    taken = uuid.uuid4()
    insert_ignoring_conflicts(Run, [row(taken, "a")], "event_id", columns=columns)
    rows = [row(uuid.uuid4(), "b"), row(taken, "c")]
    assert insert_ignoring_conflicts(Run, rows, key="event_id", columns=columns) == {0}
    assert sorted(Run.objects.values_list("run_id", flat=True)) == ["a", "b"]


def test_interaction_fields_round_trip_a_uuid_foreign_key_small_integers_and_json(alice):
    batch = make_batch(alice, [("q", "c")])
    Interaction.objects.all().delete()
    when = dt.datetime(2026, 1, 28, 10, 0, tzinfo=dt.UTC)
    rows = [
        {
            "batch": batch.pk,  # a UUID primary key, through the foreign key
            "row_number": 7,
            "chat_id": "",
            "conversation": 3,
            "input": {"question": "2+2?", "n": 4},
            "output": None,
            "status": "pending",
            "error": "",
            "attempts": 2,
            "started_at": None,
            "finished_at": None,
            "claimed_by": "",
            "heartbeat_at": when,
        }
    ]
    assert insert_ignoring_conflicts(Interaction, rows, key="row_number") == {0}
    item = Interaction.objects.get()
    assert (item.batch_id, item.row_number, item.conversation, item.attempts) == (batch.pk, 7, 3, 2)
    assert (item.input, item.output, item.heartbeat_at) == (
        {"question": "2+2?", "n": 4},
        None,
        when,
    )


RUN_COLUMNS = [
    *("event_id", "run_id", "parent_run_id", "agent_name", "job_type", "product"),
    *("git_repo", "git_branch", "git_commit", "status", "start_time", "end_time"),
    *("metrics_json", "context_json", "error_summary", "owner", "created_at", "updated_at"),
]


def run_rows(owner, count, *, start=0):
    """``count`` runs with every kind of value: text, absent text, JSON as text and
    as objects, times in another zone, and NULLs."""
    when = dt.datetime(2026, 1, 28, 12, 30, 15, 123456, tzinfo=PLUS_TWO)
    rows = []
    for n in range(start, start + count):
        full = n % 2 == 0
        rows.append(
            (uuid.uuid4(), f"run-{n}", f"parent-{n // 10}" if full else None, "agent", "job",
             "ü" * (n % 3) if full else None, None, "main", None, "success", when,
             when + dt.timedelta(seconds=n) if full else None,
             JSONText(f'{{"n": {n}}}') if full else None, {"tags": ["a", n]} if full else None,
             "boom" if full else None, owner.pk, when, when)
        )  # fmt: skip
    return rows


def test_a_batch_large_enough_to_be_staged_round_trips_and_skips_conflicts(alice):
    stored = run_rows(alice, 30)
    insert_ignoring_conflicts(Run, stored, key="event_id", columns=RUN_COLUMNS)
    fresh = run_rows(alice, STAGE_FROM_ROWS * 2, start=30)
    # Stored rows again (their event_ids conflict) and a new event_id with a stored
    # run_id (the other unique constraint), shuffled among the new ones.
    clash = (uuid.uuid4(), *stored[0][1:])
    rows = fresh[:40] + stored[::3] + [clash] + fresh[40:]
    inserted = insert_ignoring_conflicts(Run, rows, key="event_id", columns=RUN_COLUMNS)
    assert inserted == {i for i, row in enumerate(rows) if row in fresh}
    assert Run.objects.count() == 30 + len(fresh)
    for row in fresh[:2]:
        run = Run.objects.get(event_id=row[0])
        assert (run.run_id, run.parent_run_id, run.product, run.git_repo) == (
            row[1], row[2] or "", row[5] or "", ""
        )  # fmt: skip
        assert (run.end_time, run.error_summary) == (row[11], row[14] or "")
        assert run.metrics_json == (None if row[12] is None else {"n": int(row[1][4:])})
        assert run.context_json == row[13]
        assert run.start_time == row[10]


def test_two_staged_batches_in_one_transaction_do_not_mix(alice):
    with transaction.atomic():
        first = run_rows(alice, STAGE_FROM_ROWS)
        second = run_rows(alice, STAGE_FROM_ROWS, start=STAGE_FROM_ROWS)
        assert insert_ignoring_conflicts(Run, first, "event_id", columns=RUN_COLUMNS) == set(
            range(STAGE_FROM_ROWS)
        )
        # The first batch's rows again, then new ones: the positions are this batch's.
        rows = first[:5] + second
        inserted = insert_ignoring_conflicts(Run, rows, "event_id", columns=RUN_COLUMNS)
        assert inserted == set(range(5, 5 + STAGE_FROM_ROWS))
    assert Run.objects.count() == 2 * STAGE_FROM_ROWS


def test_rows_are_inserted_in_key_order(alice):
    rows = run_rows(alice, STAGE_FROM_ROWS * 2)
    insert_ignoring_conflicts(Run, rows, "event_id", columns=RUN_COLUMNS)
    by_id = list(Run.objects.order_by("id").values_list("event_id", flat=True))
    assert by_id == sorted((row[0] for row in rows), key=str)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_staging_table_lost_to_a_rollback_is_created_again(alice):
    with transaction.atomic():
        insert_ignoring_conflicts(
            Run, run_rows(alice, STAGE_FROM_ROWS), "event_id", columns=RUN_COLUMNS
        )
        transaction.set_rollback(True)
    rows = run_rows(alice, STAGE_FROM_ROWS)
    assert insert_ignoring_conflicts(Run, rows, "event_id", columns=RUN_COLUMNS) == set(
        range(len(rows))
    )
    assert Run.objects.count() == len(rows)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_session_creates_its_staging_table_once_and_commits_leave_it_empty(alice):
    taken = run_rows(alice, 1, start=10_000)
    insert_ignoring_conflicts(Run, taken, "event_id", columns=RUN_COLUMNS)

    def insert(start):
        # one row stored already, so that the COPY straight into the table is refused
        rows = [*run_rows(alice, STAGE_FROM_ROWS, start=start), *taken]
        with CaptureQueriesContext(connection) as ctx:
            assert insert_ignoring_conflicts(Run, rows, "event_id", columns=RUN_COLUMNS) == set(
                range(len(rows) - 1)
            )  # outside any transaction: the insert makes its own
        return [query["sql"].split()[0] for query in ctx.captured_queries]

    refused = ["BEGIN", "COPY", "ROLLBACK"]
    assert insert(0) == [*refused, "BEGIN", "CREATE", "COPY", "WITH", "COMMIT"]
    assert insert(STAGE_FROM_ROWS) == [*refused, "BEGIN", "COPY", "WITH", "COMMIT"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE 'batchsvc_stage_%%' "
            "AND relpersistence = 't'"
        )
        (stage,) = cursor.fetchone()
        cursor.execute(f"SELECT count(*) FROM {stage}")
        assert cursor.fetchone() == (0,)
    assert Run.objects.count() == 2 * STAGE_FROM_ROWS + 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_large_batch_of_new_rows_is_one_copy_into_the_table(alice):
    rows = run_rows(alice, STAGE_FROM_ROWS)
    with CaptureQueriesContext(connection) as ctx:
        assert insert_ignoring_conflicts(Run, rows, "event_id", columns=RUN_COLUMNS) == set(
            range(len(rows))
        )
    assert [query["sql"].split()[:2] for query in ctx.captured_queries] == [
        ["BEGIN"],
        ["COPY", '"traces_run"'],
        ["COMMIT"],
    ]
    assert Run.objects.filter(metrics_json__n=0).count() == 1  # JSON text stored as jsonb


LOG_COLUMNS = ["run", "seq", "timestamp", "level", "message", "client_id", "received_at"]


def log_rows(run, count, *, start=1):
    when = dt.datetime(2026, 1, 28, 12, 30, 15, 123456, tzinfo=PLUS_TWO)
    return [
        (run.pk, seq, when, "info", f"line {seq} ü", f"c{seq}" if seq % 2 else None, when)
        for seq in range(start, start + count)
    ]


@pytest.mark.parametrize("count", [1, STAGE_FROM_ROWS])
def test_insert_new_stores_every_row_as_the_orm_reads_it(alice, count):
    from setuplogs.models import LogEntry

    run = Run.objects.create(
        owner=alice, event_id=uuid.uuid4(), run_id="r", start_time=dt.datetime.now(dt.UTC)
    )
    insert_new(LogEntry, log_rows(run, count), key="seq", columns=LOG_COLUMNS)
    stored = list(LogEntry.objects.of_run(run).order_by("seq"))
    assert [line.seq for line in stored] == list(range(1, count + 1))
    first = stored[0]
    assert (first.message, first.client_id, first.level) == ("line 1 ü", "c1", "info")
    assert first.timestamp == dt.datetime(2026, 1, 28, 10, 30, 15, 123456, tzinfo=dt.UTC)
    assert all(line.client_id == "" for line in stored[1::2])  # None is stored as ""


@pytest.mark.parametrize("count", [1, STAGE_FROM_ROWS])
def test_insert_new_refuses_the_whole_batch_when_one_row_breaks_a_constraint(alice, count):
    from django.db import IntegrityError

    from setuplogs.models import LogEntry

    run = Run.objects.create(
        owner=alice, event_id=uuid.uuid4(), run_id="r", start_time=dt.datetime.now(dt.UTC)
    )
    insert_new(LogEntry, log_rows(run, 1, start=count), key="seq", columns=LOG_COLUMNS)
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_new(LogEntry, log_rows(run, count), key="seq", columns=LOG_COLUMNS)
    assert list(LogEntry.objects.of_run(run).values_list("seq", flat=True)) == [count]
