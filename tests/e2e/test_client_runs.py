"""The Python client against a real server."""

import uuid

import pytest
from batchsvc_client import ApiError, Client, TransactionTooLarge, new_event_id

from tests.conftest import make_run
from traces.models import Run

pytestmark = pytest.mark.django_db(transaction=True)


def test_upload_runs_chunks_and_adds_up_the_results(python_client, alice):
    runs = [make_run() for _ in range(25)]
    runs[13]["status"] = "exploded"
    summary = python_client.upload_runs(runs, chunk_size=10)
    assert (summary["total"], summary["created"], summary["failed"]) == (25, 24, 1)
    assert [e["index"] for e in summary["errors"]] == [13]
    assert Run.objects.filter(owner=alice).count() == Run.objects.count() == 24  # the token's user


def test_upload_runs_again_is_idempotent(python_client):
    runs = [make_run() for _ in range(12)]
    python_client.upload_runs(runs, chunk_size=5)
    summary = python_client.upload_runs(runs, chunk_size=5)
    assert (summary["created"], summary["existing"]) == (0, 12)
    assert Run.objects.count() == 12


def test_a_transactional_upload_larger_than_one_request_is_refused_before_sending(
    python_client,
):
    runs = [make_run() for _ in range(7)]
    with pytest.raises(TransactionTooLarge) as refused:
        python_client.upload_runs(runs, transactional=True, chunk_size=3)
    assert "at most 3 runs" in str(refused.value)
    assert "without transactional" in str(refused.value)
    assert "nothing was sent" in str(refused.value)
    assert not Run.objects.exists()


def test_a_refused_transactional_upload_stores_nothing_and_lists_every_failure(python_client):
    runs = [make_run() for _ in range(6)]
    runs[1]["job_type"] = ""
    runs[4]["status"] = "exploded"
    summary = python_client.upload_runs(runs, transactional=True, chunk_size=6)
    assert summary["rolled_back"] is True
    assert (summary["total"], summary["created"], summary["failed"]) == (6, 0, 2)
    assert [e["index"] for e in summary["errors"]] == [1, 4]
    assert not Run.objects.exists()


def test_uuid_values_and_new_event_ids_are_uploaded_as_they_are(python_client):
    made = new_event_id()
    runs = [make_run(event_id=uuid.uuid4()), make_run(event_id=made)]
    runs[0]["context_json"] = {"trace_id": uuid.uuid4()}
    summary = python_client.upload_runs(runs, transactional=True)
    assert (summary["created"], summary["failed"]) == (2, 0)
    assert str(Run.objects.get(run_id=runs[0]["run_id"]).event_id) == str(runs[0]["event_id"])
    assert str(Run.objects.get(run_id=runs[1]["run_id"]).event_id) == made


def test_a_dry_run_counts_the_runs_and_stores_none(python_client):
    runs = [make_run() for _ in range(4)]
    runs[2]["status"] = "exploded"
    summary = python_client.upload_runs(runs, dry_run=True, chunk_size=2)
    assert (summary["total"], summary["created"], summary["failed"]) == (4, 3, 1)
    assert [e["index"] for e in summary["errors"]] == [2]
    assert not Run.objects.exists()


def test_a_refused_request_raises_api_error(python_client, settings):
    settings.RUNS_BATCH_MAX = 2
    with pytest.raises(ApiError) as caught:
        python_client.upload_runs([make_run() for _ in range(3)], chunk_size=3)
    assert caught.value.status == 400
    assert "limit is 2" in str(caught.value)


def test_connection_errors_are_retried_until_the_deadline_then_raised(caplog):
    import socket

    import httpx

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = Client(f"http://127.0.0.1:{port}", token="t", backoff=0.001, retry_deadline=0.5)
    with client, pytest.raises(httpx.ConnectError):
        client.upload_runs([make_run()])
    # An unreachable server is waited for, not given max_retries tries.
    assert sum("retrying" in r.getMessage() for r in caplog.records) > client.max_retries
