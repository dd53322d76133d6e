"""The worker's hand-written SQL (batches.engine.sql), on the real database."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from batches.engine import sql
from batches.models import Batch, Interaction
from tests.batches.factories import make_batch

pytestmark = pytest.mark.django_db


def test_running_counts_count_running_rows_per_batch_and_since_a_heartbeat(alice):
    one = make_batch(alice, [(f"q{n}", "") for n in range(4)])
    other = make_batch(alice, [("q", "")])
    now = timezone.now()
    rows = list(one.interactions.order_by("row_number"))
    Interaction.objects.filter(pk__in=[rows[0].pk, rows[1].pk]).update(
        status="running", heartbeat_at=now
    )
    Interaction.objects.filter(pk=rows[2].pk).update(
        status="running", heartbeat_at=now - timedelta(minutes=10)
    )

    assert sql.running_counts() == {one.pk: 3}
    assert sql.running_counts(since=now - timedelta(minutes=1)) == {one.pk: 2}
    assert sql.running_counts(batch_id=other.pk) == {}


def test_a_claim_query_names_its_partial_index_on_sqlite_and_locks_on_postgresql(alice):
    batch = make_batch(alice, [("q", "")])

    statement, _ = sql.claim_sql(Interaction.objects.heads(batch), "interaction_pending")

    if connection.vendor == "sqlite":
        assert 'INDEXED BY "interaction_pending"' in statement
    else:
        assert "FOR UPDATE SKIP LOCKED" in statement


def test_stamp_claimed_records_when_a_batch_was_served(alice):
    batch = make_batch(alice, [("q", "")])
    now = timezone.now()

    sql.stamp_claimed(batch.pk, now)

    assert Batch.objects.get(pk=batch.pk).claimed_at == now


@pytest.mark.parametrize(
    ("status", "counted"),
    [
        ("processing", (5, 3)),
        ("cancelling", (5, 3)),
        ("cancelled", (3, 2)),  # counted exactly from its rows when it ended
        ("processed", (3, 2)),
    ],
)
def test_counters_are_added_to_unended_batches_only(alice, status, counted):
    batch = make_batch(alice, [("q", "")])
    Batch.objects.filter(pk=batch.pk).update(status=status, processed_items=3, failed_items=2)

    sql.add_counts(batch.pk, succeeded=2, failed=1)

    batch.refresh_from_db()
    assert (batch.processed_items, batch.failed_items) == counted
