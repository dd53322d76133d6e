"""The driver-level INSERT converts each field type the way the ORM would: what it
writes reads back through the ORM as the values it was given. (It writes the
columns it is given and no defaults: callers name every column.)"""

import datetime as dt
import uuid

import pytest

from batches.models import Interaction
from batchsvc.inserts import insert_ignoring_conflicts
from batchsvc.schemas import JSONText
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
