import io
import json
import logging

import pytest

from batches.models import BatchStatus
from batchsvc.ops import logs
from tests.batches.factories import make_batch
from tests.setuplogs.conftest import batch_url, line
from tests.support.waiting import wait_until
from tests.support.workers import Worker

pytestmark = pytest.mark.django_db


@pytest.fixture
def json_lines():
    """Every line logged meanwhile, as the JSON a LOG_FORMAT=json process writes."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter(json=True))
    loggers = [logging.getLogger(), logging.getLogger("batchsvc.requests")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield lambda: [json.loads(text) for text in stream.getvalue().splitlines()]
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


def test_a_sane_incoming_request_id_is_kept(anonymous):
    response = anonymous.get("/healthz", HTTP_X_REQUEST_ID="edge-7f3a.b_2")
    assert response["X-Request-ID"] == "edge-7f3a.b_2"


@pytest.mark.parametrize(
    "incoming", ["", "x" * 201, "has space", "new\nline", "semi;colon", "ünïcode"]
)
def test_any_other_request_id_is_replaced_by_a_generated_one(anonymous, incoming):
    response = anonymous.get("/healthz", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] != incoming
    assert len(response["X-Request-ID"]) == 32


def test_two_requests_get_two_ids(anonymous):
    assert anonymous.get("/healthz")["X-Request-ID"] != anonymous.get("/healthz")["X-Request-ID"]


def test_every_line_a_request_writes_carries_its_id(api, json_lines):
    response = api.get("/api/v1/runs/no-such-run/", HTTP_X_REQUEST_ID="req-404")
    assert response.status_code == 404
    assert response.json()["request_id"] == "req-404"
    lines = json_lines()
    assert {entry["logger"] for entry in lines} == {"batchsvc.requests", "django.request"}
    assert {entry["request_id"] for entry in lines} == {"req-404"}


def test_the_request_line_has_route_user_status_duration_and_item_counts(
    api, alice, run, json_lines
):
    body = {"logs": [line("one"), line("two"), {"level": "info"}]}
    response = api.post(batch_url(run), body, format="json")
    request_id = response["X-Request-ID"]
    (entry,) = [e for e in json_lines() if e.get("request_id") == request_id]
    assert entry["event"] == f"POST {batch_url(run)} 200"
    assert (entry["route"], entry["method"], entry["status"]) == ("setup-logs", "POST", 200)
    assert entry["user"] == alice.pk
    assert entry["duration_ms"] >= 0
    assert entry["resource"] == "log_lines"
    assert entry["items"] == {"created": 2, "existing": 0, "failed": 1}
    assert entry["level"] == "info"
    assert "timestamp" in entry and "process" in entry


def test_the_text_format_is_one_readable_line_with_the_same_fields(api):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter(json=False))
    requests = logging.getLogger("batchsvc.requests")
    requests.addHandler(handler)
    try:
        api.get("/api/v1/runs/", HTTP_X_REQUEST_ID="text-1")
    finally:
        requests.removeHandler(handler)
    (text,) = stream.getvalue().splitlines()
    assert "GET /api/v1/runs/ 200" in text
    assert "request_id=text-1" in text and "route=run-list" in text


@pytest.mark.django_db(transaction=True)
def test_the_worker_logs_each_batch_task_with_its_counts_and_duration(alice, capfd):
    batch = make_batch(alice, [("q1", "a"), ("q2", "a"), ("q3", "")])
    worker = Worker(LOG_FORMAT="json", LOG_LEVEL="INFO").start()
    try:
        wait_until(
            lambda: type(batch).objects.get(pk=batch.pk).status == BatchStatus.PROCESSED,
            message="the batch to be processed",
        )
    finally:
        worker.stop()  # copies the worker's log to this test's stderr
    lines = [json.loads(text) for text in capfd.readouterr().err.splitlines() if text[:1] == "{"]
    ours = [entry for entry in lines if entry.get("batch_id") == str(batch.pk)]
    started = [entry for entry in ours if entry["event"].endswith("task started")]
    ended = [entry for entry in ours if "task ended" in entry["event"]]
    assert started and ended
    last = ended[-1]
    assert (last["status"], last["processed_items"], last["failed_items"]) == ("processed", 3, 0)
    assert last["duration_ms"] >= 0 and last["task_id"]
