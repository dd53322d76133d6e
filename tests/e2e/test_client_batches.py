"""The Python client's batch helpers against a live server and a real worker process."""

import csv
import io

import pytest
from batchsvc_client import ApiError

from batches.models import Batch
from tests.batches.factories import csv_bytes
from tests.support.workers import Worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def questions(tmp_path):
    path = tmp_path / "questions.csv"
    path.write_bytes(csv_bytes([("first", "a"), ("second", "a"), ("=HYPERLINK(1)", "")]))
    return path


def test_upload_wait_and_download_a_batch(python_client, questions, tmp_path):
    created = python_client.upload_batch(questions, name="Quiz", options={"delay": 0})
    assert (created["status"], created["total_items"]) == ("queued", 3)

    worker = Worker().start()
    seen = []
    try:
        batch = python_client.wait_for_batch(created["batch_id"], poll=0.1, progress=seen.append)
    finally:
        worker.stop()

    assert (batch["status"], batch["progress"], batch["processed_items"]) == ("processed", 100, 3)
    assert seen[-1] == batch
    path = python_client.download_results(created["batch_id"], tmp_path / "results.csv")
    rows = list(csv.DictReader(io.StringIO(path.read_text("utf-8-sig"))))
    assert [r["output"] for r in rows] == [
        "echo: first (turn 1)",
        "echo: second (turn 2)",
        "echo: =HYPERLINK(1) (turn 1)",
    ]
    assert rows[2]["question"] == "'=HYPERLINK(1)"


def test_the_same_idempotency_key_uploads_once(python_client, questions):
    first = python_client.upload_batch(questions, idempotency_key="k-1")
    again = python_client.upload_batch(questions, idempotency_key="k-1")
    assert first["batch_id"] == again["batch_id"]
    assert Batch.objects.count() == 1


def test_a_dry_run_returns_the_summary(python_client, questions):
    summary = python_client.upload_batch(questions, dry_run=True)
    assert (summary["total_items"], summary["chat_groups"]) == (3, 2)
    assert not Batch.objects.exists()


def test_a_refused_upload_and_a_refused_cancel_raise_api_error(python_client, tmp_path, questions):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"prompt\nhi\n")
    with pytest.raises(ApiError) as refused:
        python_client.upload_batch(bad)
    assert refused.value.status == 400
    assert "question" in str(refused.value)

    batch_id = python_client.upload_batch(questions)["batch_id"]
    assert python_client.cancel_batch(batch_id)["status"] == "cancelled"
    with pytest.raises(ApiError) as conflict:
        python_client.cancel_batch(batch_id)
    assert conflict.value.status == 409


def test_a_failed_download_leaves_no_file(python_client, tmp_path):
    target = tmp_path / "results.csv"
    with pytest.raises(ApiError) as missing:
        python_client.download_results("00000000-0000-0000-0000-000000000000", target)
    assert missing.value.status == 404
    assert list(tmp_path.iterdir()) == []
