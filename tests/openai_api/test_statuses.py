"""A batch's status in OpenAI's words, from ours."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from batches.engine.finishing import batch_fail, batch_finish
from batches.models import Batch, BatchStatus
from openai_api import services
from openai_api.objects import batch_object
from tests.support.openai_sdk import CHAT, chat_line, jsonl

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(alice, trace_root, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    upload = SimpleUploadedFile("in.jsonl", jsonl([chat_line("a"), chat_line("b")]))
    file = services.file_create(owner=alice, upload=upload, purpose="batch")
    return services.batch_create(
        owner=alice, input_file_id=file.openai_id, endpoint=CHAT, completion_window="24h"
    )


def shown(batch: Batch) -> dict:
    return batch_object(Batch.objects.select_related("openai").get(pk=batch.pk))


def test_a_created_batch_is_validating_with_its_files_named(batch):
    created = shown(batch)

    assert created["status"] == "validating"
    assert created["output_file_id"] and created["error_file_id"]
    assert created["request_counts"] == {"total": 2, "completed": 0, "failed": 0}


def test_a_batch_whose_lines_have_all_ended_is_finalizing_until_it_is_closed(batch):
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.PROCESSING, processed_items=2)

    assert shown(batch)["status"] == "finalizing"


def test_a_batch_none_of_whose_lines_could_be_sent_is_failed_saying_why(batch):
    batch_fail(batch=batch, error="The processor is not configured.")
    batch_finish(batch=batch)

    failed = shown(batch)

    assert failed["status"] == "failed"
    assert failed["failed_at"] is not None
    assert failed["errors"]["data"][0]["message"] == "The processor is not configured."
    assert (failed["output_file_id"], failed["request_counts"]["failed"]) == (None, 2)
