"""Result files in OpenAI's line format, streamed from a batch's lines and written once
to the storage when the batch has ended."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from batches.models import Batch, BatchStatus, Interaction, InteractionStatus
from batches.processors.passthrough import unsent
from openai_api import services
from openai_api.models import File, Lines
from openai_api.results import file_content, file_size
from tests.support.openai_sdk import CHAT, chat_line, jsonl

pytestmark = pytest.mark.django_db

ANSWER = {"choices": [{"message": {"content": "4"}}]}


@pytest.fixture
def batch(alice, trace_root, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    data = jsonl([chat_line(f"q{n}") for n in range(5)])
    upload = SimpleUploadedFile("in.jsonl", data)
    file = services.file_create(owner=alice, upload=upload, purpose="batch")
    return services.batch_create(
        owner=alice, input_file_id=file.openai_id, endpoint=CHAT, completion_window="24h"
    )


def end_lines(batch: Batch) -> None:
    """Each way a line ends, one line each; the batch ended."""
    now = timezone.now()
    rows = Interaction.objects.filter(batch=batch)
    succeeded = {"text": "4", "status_code": 200, "request_id": "req_1", "body": ANSWER}
    rows.filter(row_number=1).update(status=InteractionStatus.SUCCEEDED, output=succeeded)
    refused = json.dumps({"status_code": 400, "request_id": None, "body": {"error": {}}})
    rows.filter(row_number=2).update(status=InteractionStatus.FAILED, error=refused)
    rows.filter(row_number=3).update(
        status=InteractionStatus.FAILED, error=unsent("batch_expired", "too late")
    )
    rows.filter(row_number=4).update(status=InteractionStatus.CANCELLED)
    rows.filter(row_number=5).update(status=InteractionStatus.FAILED, error="The worker died.")
    Batch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.CANCELLED, finished_at=now, processed_items=1, failed_items=3
    )


def read(which: str) -> list[dict]:
    file = File.objects.select_related("batch__openai").get(lines=which)
    return [json.loads(line) for line in b"".join(file_content(file)).splitlines()]


def test_each_way_a_line_ends_has_openai_s_line_format(batch):
    end_lines(batch)

    [output] = read(Lines.OUTPUT)
    errors = read(Lines.ERROR)

    assert output["custom_id"] == "q0"
    assert output["response"] == {"status_code": 200, "request_id": "req_1", "body": ANSWER}
    assert output["error"] is None
    assert output["id"].startswith("batch_req_")
    assert [line["custom_id"] for line in errors] == ["q1", "q2", "q3", "q4"]
    assert errors[0]["response"] == {"status_code": 400, "request_id": None, "body": {"error": {}}}
    assert [line["error"] and line["error"]["code"] for line in errors] == [
        None,
        "batch_expired",
        "batch_cancelled",
        "server_error",
    ]
    assert errors[3]["error"]["message"] == "The worker died."


def test_a_result_file_is_written_to_the_storage_once_its_batch_has_ended(batch, trace_root):
    end_lines(batch)
    file = File.objects.select_related("batch__openai").get(lines=Lines.ERROR)

    first = b"".join(file_content(file))
    name = File.objects.get(pk=file.pk).storage_name
    again = b"".join(file_content(File.objects.select_related("batch__openai").get(pk=file.pk)))

    assert first == again
    assert (trace_root / name).read_bytes() == first
    assert File.objects.get(pk=file.pk).bytes == len(first) == file_size(file)
    assert len(list((trace_root / "openai" / "results").iterdir())) == 1


def test_a_running_batch_s_file_holds_its_finished_lines_and_is_not_stored(batch, trace_root):
    Interaction.objects.filter(batch=batch, row_number=2).update(
        status=InteractionStatus.SUCCEEDED, output={"text": "", "status_code": 200, "body": {}}
    )
    file = File.objects.select_related("batch__openai").get(lines=Lines.OUTPUT)

    lines = b"".join(file_content(file)).splitlines()

    assert [json.loads(line)["custom_id"] for line in lines] == ["q1"]
    assert not File.objects.get(pk=file.pk).storage_name
    assert not (trace_root / "openai" / "results").exists()


def test_an_openai_batch_is_in_the_admin_like_any_other(batch, client, staff):
    client.force_login(staff)

    batches = client.get("/admin/batches/batch/")
    files = client.get("/admin/openai_api/file/")

    assert batches.status_code == files.status_code == 200
    assert "in.jsonl" in batches.content.decode()
    assert "in.jsonl" in files.content.decode()
