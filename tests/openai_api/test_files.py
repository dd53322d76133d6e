"""Files through the openai SDK: stored in the traces storage, owned, streamed."""

import io

import openai
import pytest
from django.utils import timezone

from openai_api.models import File
from tests.support.openai_sdk import chat_line, create_batch, jsonl, upload

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_uploaded_file_is_retrieved_listed_and_read_back_byte_for_byte(sdk, trace_root):
    lines = [chat_line(f"q{n}") for n in range(3)]

    created = upload(sdk, lines, name="questions.jsonl")

    assert (created.object, created.purpose, created.filename) == (
        "file",
        "batch",
        "questions.jsonl",
    )
    assert created.bytes == len(jsonl(lines))
    assert created.id.startswith("file-")
    assert sdk.files.retrieve(created.id) == created
    assert [file.id for file in sdk.files.list()] == [created.id]
    assert sdk.files.content(created.id).content == jsonl(lines)
    stored = File.objects.get().storage_name
    assert (trace_root / stored).read_bytes() == jsonl(lines)


def test_a_deleted_file_is_gone_with_its_bytes(sdk, trace_root):
    created = upload(sdk, [chat_line("q")])
    stored = trace_root / File.objects.get().storage_name

    deleted = sdk.files.delete(created.id)

    assert (deleted.id, deleted.deleted) == (created.id, True)
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(created.id)
    assert not stored.exists()


def test_a_file_for_another_purpose_than_batch_is_refused(sdk):
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.files.create(file=("a.jsonl", io.BytesIO(b"{}\n")), purpose="fine-tune")

    assert refused.value.param == "purpose"
    assert not File.objects.exists()


def test_a_file_over_the_byte_limit_is_refused_and_nothing_is_stored(sdk, settings, trace_root):
    settings.OPENAI_BATCH_MAX_BYTES = 100

    with pytest.raises(openai.BadRequestError) as refused:
        sdk.files.create(file=("big.jsonl", io.BytesIO(b"x" * 101)), purpose="batch")

    assert "over the limit of 100 bytes" in refused.value.message
    assert refused.value.code == "file_too_large"
    assert not File.objects.exists()
    assert not list(trace_root.rglob("*.jsonl"))


def test_a_form_field_files_create_does_not_take_is_refused_and_nothing_stored(sdk, trace_root):
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.files.create(
            file=("a.jsonl", io.BytesIO(jsonl([chat_line("q")]))),
            purpose="batch",
            extra_body={"purpose_note": "eval"},
        )

    assert refused.value.param == "purpose_note"
    assert not File.objects.exists()
    assert not list(trace_root.rglob("*.jsonl"))


def test_a_file_given_an_expiry_is_gone_once_it_passes(sdk):
    created = sdk.files.create(
        file=("a.jsonl", io.BytesIO(jsonl([chat_line("q")]))),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 3600},
    )

    assert created.expires_at == created.created_at + 3600
    File.objects.update(expires_at=File.objects.get().created_at)
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(created.id)


def test_a_batch_s_result_files_keep_the_output_expiry_it_asked_for(sdk):
    batch = create_batch(
        sdk, [chat_line("q")], output_expires_after={"anchor": "created_at", "seconds": 7200}
    )

    # Counted from the end of the batch's window: its files are complete by then.
    for result in (batch.output_file_id, batch.error_file_id):
        assert sdk.files.retrieve(result).expires_at == batch.expires_at + 7200
    File.objects.filter(batch__isnull=False).update(expires_at=timezone.now())
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve(batch.output_file_id)
    assert sdk.files.retrieve(batch.input_file_id).expires_at is None


def test_a_batch_asking_no_output_expiry_keeps_its_result_files(sdk):
    batch = create_batch(sdk, [chat_line("q")])

    assert sdk.files.retrieve(batch.output_file_id).expires_at is None
