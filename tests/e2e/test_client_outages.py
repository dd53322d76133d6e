"""The Python client through outages: a front server (tests/e2e/front.py) stands in
for the server while its database is down (503 + Retry-After), loses answers or
closes its port, and forwards to the live server otherwise."""

import email.utils
import itertools
import time

import pytest
from batchsvc_client import ApiError, Client, TraceWriter

from batches.models import Batch
from tests.batches.factories import csv_bytes
from tests.conftest import make_run
from traces.models import Run, TraceFile

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 15  # seconds to wait for something that should happen much sooner
# Starts once two requests have been answered: answers lost (the server acted),
# then the database down (503), then the web process gone (connection refused).
OUTAGE = [("losing", 0.3), ("unavailable", 1.0), ("down", 1.0)]


@pytest.fixture
def python_client(front, token):
    with Client(front.url, token=token, backoff=0.05, max_backoff=0.5) as api_client:
        yield api_client


def gaps_after_503s(front) -> list[float]:
    """Seconds from each 503 answer to the next request's arrival."""
    seen = front.seen
    return [b.arrived - a.answered for a, b in itertools.pairwise(seen) if a.status == 503]


def test_a_503_is_retried_no_sooner_than_its_retry_after_and_then_succeeds(python_client, front):
    front.outage([("unavailable", 1.5)])
    run = make_run()
    summary = python_client.upload_runs([run])

    assert summary["created"] == 1
    assert str(Run.objects.get().event_id) == run["event_id"]
    assert front.statuses()[0] == 503 and front.statuses()[-1] == 201
    gaps = gaps_after_503s(front)
    assert gaps and min(gaps) >= 1.0


def test_a_retry_after_date_is_waited_for(python_client, front):
    front.retry_after = email.utils.formatdate(time.time() + 2, usegmt=True)
    front.outage([("unavailable", 0.5)])
    python_client.upload_runs([make_run()])

    retry_at = email.utils.parsedate_to_datetime(front.retry_after).timestamp()
    first, second = front.seen[:2]
    assert first.status == 503
    assert second.arrived_wall >= retry_at
    assert Run.objects.count() == 1


def test_the_client_gives_up_at_its_deadline_with_the_503(front, token):
    front.mode = "unavailable"
    client = Client(front.url, token=token, retry_deadline=2.5)
    with client, pytest.raises(ApiError) as caught:
        client.upload_runs([make_run()])
    assert caught.value.status == 503
    assert "database is unavailable" in str(caught.value)
    # Tries at 0 s, then no sooner than 1 s and 2 s; a fourth could not start by 2.5 s.
    assert 2 <= len(front.seen) <= 3
    assert not Run.objects.exists()


def test_a_retry_after_beyond_the_deadline_is_not_waited_for(front, token):
    front.mode, front.retry_after = "unavailable", "30"
    client = Client(front.url, token=token, retry_deadline=5)
    with client, pytest.raises(ApiError):
        client.upload_runs([make_run()])
    assert front.statuses() == [503]


def test_a_500_is_retried_max_retries_times_only(front, token):
    front.mode = "failing"
    client = Client(front.url, token=token, max_retries=2, backoff=0.01)
    with client, pytest.raises(ApiError) as caught:
        client.upload_runs([make_run()])
    assert caught.value.status == 500
    assert front.statuses() == [500, 500, 500]


def test_upload_runs_stores_each_run_once_across_an_outage_that_starts_mid_upload(
    python_client, front
):
    runs = [make_run() for _ in range(60)]
    front.outage(OUTAGE, after=2)
    summary = python_client.upload_runs(runs, chunk_size=10)

    assert front.outage_over.wait(WAIT)
    statuses = front.statuses()
    assert statuses[:2] == [201, 201] and {502, 503} <= set(statuses)
    # The third chunk was stored while its answer was lost: retried, it is "existing".
    assert (summary["total"], summary["created"], summary["existing"]) == (60, 50, 10)
    stored = list(Run.objects.values_list("event_id", flat=True))
    assert sorted(str(e) for e in stored) == sorted(run["event_id"] for run in runs)


def test_trace_files_are_written_once_each_across_an_outage_that_starts_mid_sequence(
    python_client, front, alice_root
):
    files = [(f"content {n}", f"t{n:02}.txt") for n in range(30)]
    front.outage(OUTAGE, after=2)
    assert TraceWriter(python_client, "out", max_batch_size=5).write_formatted_traces(files)

    assert front.outage_over.wait(WAIT)
    assert {502, 503} <= set(front.statuses())
    # The batches were waited for, not split into single writes.
    assert {seen.path for seen in front.seen} == {"/api/v1/traces/write-batch"}
    assert TraceFile.objects.count() == 30
    written = sorted((alice_root / "out").iterdir())
    assert [(p.name, p.read_text()) for p in written] == [(name, text) for text, name in files]


def test_a_batch_upload_retried_after_a_lost_answer_creates_one_batch(
    python_client, front, tmp_path
):
    questions = tmp_path / "questions.csv"
    questions.write_bytes(csv_bytes([("first", "a"), ("second", "a")]))
    front.outage([("losing", 0.3), ("unavailable", 0.5)])
    created = python_client.upload_batch(questions)

    assert str(Batch.objects.get().pk) == created["batch_id"]
    keys = {seen.headers["idempotency-key"] for seen in front.seen}
    assert len(front.seen) > 1 and len(keys) == 1


def test_a_results_download_waits_out_a_503(python_client, front, tmp_path):
    questions = tmp_path / "questions.csv"
    questions.write_bytes(csv_bytes([("first", "a")]))
    batch_id = python_client.upload_batch(questions)["batch_id"]
    front.outage([("unavailable", 0.5)])
    path = python_client.download_results(batch_id, tmp_path / "results.csv")
    assert front.statuses("results?format=csv")[0] == 503
    assert "question" in path.read_text("utf-8-sig")
