"""A batch's priority and concurrency: taken from the upload form, checked, shown; and
what a batch is waiting for."""

import socket
from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_tasks_db.models import DBTaskResult

from batches.models import Batch, Interaction, InteractionStatus
from batches.models import Worker as WorkerRow
from batches.processors import lanes
from batches.processors.lanes import Lane
from tests.batches.factories import csv_upload, post_batch
from tests.conftest import error_body

pytestmark = pytest.mark.django_db

ROWS = [("one", ""), ("two", "")]


def test_an_upload_takes_a_priority_and_a_concurrency_and_the_detail_shows_them(api):
    response = post_batch(api, csv_upload(ROWS), priority="high", concurrency="3")

    assert response.status_code == 202
    batch = Batch.objects.get(pk=response.json()["batch_id"])
    assert (batch.priority, batch.concurrency) == ("high", 3)
    detail = api.get(f"/api/v1/batches/{batch.pk}/").json()
    assert (detail["priority"], detail["concurrency"]) == ("high", 3)


def test_an_upload_without_them_is_normal_and_uncapped(api):
    response = post_batch(api, csv_upload(ROWS))

    detail = api.get(f"/api/v1/batches/{response.json()['batch_id']}/").json()
    assert (detail["priority"], detail["concurrency"]) == ("normal", None)


@pytest.mark.parametrize("priority", ["urgent", "HIGH", "0"])
def test_an_unknown_priority_is_a_400_naming_the_allowed_values_and_creates_nothing(api, priority):
    response = post_batch(api, csv_upload(ROWS), priority=priority)

    assert response.status_code == 400
    assert "priority must be one of: low, normal, high" in error_body(response)["error"]
    assert not Batch.objects.exists()
    assert not DBTaskResult.objects.exists()


@pytest.mark.parametrize("concurrency", ["0", "-1", "33", "two", "1.5"])
def test_a_concurrency_out_of_range_is_a_400_naming_the_range_and_creates_nothing(
    api, settings, concurrency
):
    settings.BATCH_CONCURRENCY_MAX = 32

    response = post_batch(api, csv_upload(ROWS), concurrency=concurrency)

    assert response.status_code == 400
    assert "concurrency must be a whole number from 1 to 32" in error_body(response)["error"]
    assert not Batch.objects.exists()


def test_a_dry_run_checks_them_too(api):
    response = post_batch(api, csv_upload(ROWS), query="?dry_run=true", concurrency="0")

    assert response.status_code == 400
    assert "concurrency" in error_body(response)["error"]


def test_a_batch_without_a_concurrency_is_capped_at_the_default(api, settings):
    settings.BATCH_CONCURRENCY_DEFAULT, settings.BATCH_CONCURRENCY_MAX = 8, 32
    response = post_batch(api, csv_upload(ROWS))

    batch = Batch.objects.get(pk=response.json()["batch_id"])
    assert (batch.concurrency, batch.cap) == (None, 8)
    settings.BATCH_CONCURRENCY_MAX = 4
    assert batch.cap == 4


# waiting_for ----------------------------------------------------------------------


def test_a_queued_batch_with_no_live_worker_is_waiting_for_a_worker(api, settings):
    settings.BATCH_STALE_AFTER = 300
    WorkerRow.objects.create(
        name="gone", hostname="h", pid=1, started_at=timezone.now(), beat_at=timezone.now()
    )
    WorkerRow.objects.update(beat_at=timezone.now() - timedelta(seconds=301))
    batch_id = post_batch(api, csv_upload(ROWS)).json()["batch_id"]

    waiting = api.get(f"/api/v1/batches/{batch_id}").json()["waiting_for"]

    assert waiting == {
        "reason": "worker",
        "message": "No worker is running: none has sent a heartbeat in the last 300 s "
        "(BATCH_STALE_AFTER).",
        "until": None,
    }


def test_a_batch_that_has_ended_waits_for_nothing(api):
    batch_id = post_batch(api, csv_upload(ROWS)).json()["batch_id"]
    api.post(f"/api/v1/batches/{batch_id}/cancel")

    assert api.get(f"/api/v1/batches/{batch_id}").json()["waiting_for"] is None


def test_a_batch_whose_processor_lane_is_paused_is_waiting_for_the_rate_limit(api, settings):
    # A 429 paused the lane (batches.processors.lanes), as a worker's call would have.
    Lane("echo", {}).pause(30)
    until = lanes.paused_until("echo")
    WorkerRow.objects.create(
        name="live", hostname="h", pid=1, started_at=timezone.now(), beat_at=timezone.now()
    )
    batch_id = post_batch(api, csv_upload(ROWS), concurrency="1").json()["batch_id"]

    waiting = api.get(f"/api/v1/batches/{batch_id}").json()["waiting_for"]

    assert waiting["reason"] == "rate_limit"
    assert waiting["message"] == (
        f"The echo processor's rate limit: its next call waits until {until.isoformat()}."
    )
    assert parse_datetime(waiting["until"]) == until


def test_a_batch_whose_lane_is_free_waits_for_no_rate_limit(api):
    WorkerRow.objects.create(
        name="live", hostname="h", pid=1, started_at=timezone.now(), beat_at=timezone.now()
    )
    batch_id = post_batch(api, csv_upload(ROWS), concurrency="1").json()["batch_id"]

    assert api.get(f"/api/v1/batches/{batch_id}").json()["waiting_for"]["reason"] == "worker"


def live_worker(threads: int) -> None:
    now = timezone.now()
    WorkerRow.objects.create(
        name=f"live-{threads}", hostname="h", pid=1, started_at=now, beat_at=now, threads=threads
    )


def another_batch_running(api, rows: int) -> None:
    """``rows`` conversations of another batch running now, each on a worker thread."""
    other = post_batch(api, csv_upload([(f"q{n}", f"c{n}") for n in range(rows)])).json()
    Interaction.objects.filter(batch_id=other["batch_id"]).update(
        status=InteractionStatus.RUNNING, heartbeat_at=timezone.now()
    )


def test_a_batch_a_free_worker_thread_will_start_waits_for_nothing(api):
    live_worker(threads=2)
    another_batch_running(api, rows=1)
    batch_id = post_batch(api, csv_upload(ROWS)).json()["batch_id"]

    assert api.get(f"/api/v1/batches/{batch_id}").json()["waiting_for"] is None


def test_a_batch_whose_workers_threads_all_run_other_conversations_waits_for_a_worker(api):
    live_worker(threads=2)
    another_batch_running(api, rows=2)
    batch_id = post_batch(api, csv_upload(ROWS)).json()["batch_id"]

    assert api.get(f"/api/v1/batches/{batch_id}").json()["waiting_for"] == {
        "reason": "worker",
        "message": "Waiting for a free worker thread: the live workers run as many "
        "conversations as they have threads (2), 0 of them its own (its concurrency allows 5).",
        "until": None,
    }


def test_the_admin_batch_page_says_what_the_batch_waits_for(admin_client, api):
    batch_id = post_batch(api, csv_upload(ROWS)).json()["batch_id"]

    page = admin_client.get(f"/admin/batches/batch/{batch_id}/change/").content.decode()

    assert 'data-batch-field="waiting_for.message"' in page
    assert "No worker is running: none has sent a heartbeat" in page


def test_a_batch_read_while_the_lanes_redis_is_down_is_a_503_naming_redis(api, settings):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.BATCH_LANES_REDIS_URL = f"redis://127.0.0.1:{port}/0"
    WorkerRow.objects.create(
        name="live", hostname="h", pid=1, started_at=timezone.now(), beat_at=timezone.now()
    )
    batch_id = post_batch(api, csv_upload(ROWS)).json()["batch_id"]

    response = api.get(f"/api/v1/batches/{batch_id}")

    assert response.status_code == 503
    assert response["Retry-After"] == str(settings.DB_UNAVAILABLE_RETRY_AFTER)
    assert error_body(response) == {
        "error": f"Redis (CACHE_URL) is unavailable; try again in "
        f"{settings.DB_UNAVAILABLE_RETRY_AFTER} seconds."
    }
