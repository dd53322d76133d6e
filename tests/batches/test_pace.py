"""A batch's pace: what the API and the admin show of how fast it goes."""

import datetime as dt

import pytest
from django.utils import timezone

from batches.models import Batch, BatchStatus, InteractionStatus
from batches.selectors import batch_pace, status_counts
from tests.batches.factories import make_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(alice):
    """A 100-item batch started two minutes ago: 60 ran, 30 of them in the last minute."""
    batch = make_batch(alice, [(f"q{n}", "") for n in range(100)])
    now = timezone.now()
    items = batch.interactions.order_by("row_number")
    early = [item.pk for item in items[:30]]
    late = [item.pk for item in items[30:60]]
    batch.interactions.filter(pk__in=early).update(
        status=InteractionStatus.SUCCEEDED, finished_at=now - dt.timedelta(seconds=90)
    )
    batch.interactions.filter(pk__in=late).update(
        status=InteractionStatus.FAILED, finished_at=now - dt.timedelta(seconds=20)
    )
    Batch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.PROCESSING,
        started_at=now - dt.timedelta(minutes=2),
        processed_items=30,
        failed_items=30,
    )
    batch.refresh_from_db()
    return batch, now


def test_a_processing_batch_has_its_rates_and_an_estimate_from_the_last_minute(running):
    batch, now = running
    assert batch_pace(batch, now=now) == {
        "elapsed_seconds": 120.0,
        "items_per_minute": 30.0,  # 60 in two minutes
        "items_per_minute_last_minute": 30.0,
        "eta_seconds": 80,  # 40 left at 30 a minute
    }


def test_an_ended_batch_keeps_its_rate_and_has_no_estimate(running):
    batch, now = running
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.CANCELLED, finished_at=now)
    batch.refresh_from_db()
    pace = batch_pace(batch, now=now + dt.timedelta(hours=1))
    assert (pace["elapsed_seconds"], pace["items_per_minute"]) == (120.0, 30.0)
    assert (pace["items_per_minute_last_minute"], pace["eta_seconds"]) == (None, None)


def test_a_batch_not_started_has_no_pace_and_the_api_says_so(api, alice):
    batch = make_batch(alice, [("q", "")])
    body = api.get(f"/api/v1/batches/{batch.pk}").json()
    assert body["pace"] == {
        "elapsed_seconds": None,
        "items_per_minute": None,
        "items_per_minute_last_minute": None,
        "eta_seconds": None,
    }


def test_status_counts_name_every_status(running):
    batch, _ = running
    assert status_counts(batch) == {
        "pending": 40,
        "running": 0,
        "succeeded": 30,
        "failed": 30,
        "cancelled": 0,
    }
