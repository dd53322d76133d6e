"""Every refusal at batches.create: a 400 the SDK raises as BadRequestError, naming the
line at fault, and nothing created."""

import io

import openai
import pytest

from batches.models import Batch, Interaction, OwnerQuota
from openai_api.models import File, OpenAIBatch
from tests.support.openai_sdk import CHAT, chat_line, jsonl, upload

pytestmark = pytest.mark.django_db(transaction=True)


def refused(sdk, lines, **create) -> openai.BadRequestError:
    file = upload(sdk, lines)
    arguments = {"input_file_id": file.id, "endpoint": CHAT, "completion_window": "24h"}
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.batches.create(**{**arguments, **create})
    assert not Batch.objects.exists()
    assert not Interaction.objects.exists()
    assert not OpenAIBatch.objects.exists()
    assert File.objects.count() == 1  # the input file only
    return raised.value


@pytest.mark.parametrize(
    ("lines", "message", "code"),
    [
        (
            [chat_line("a"), '{"custom_id": "b", "method": '],
            "Line 2 is not valid JSON",
            "invalid_json_line",
        ),
        ([chat_line("a"), "[1, 2]"], "Line 2 is not a JSON object", "invalid_json_line"),
        ([{**chat_line("a"), "custom_id": None}], "Line 1 has no custom_id", "missing_custom_id"),
        (
            [chat_line("a"), chat_line("b"), chat_line("a")],
            "Line 3: the custom_id 'a'",
            "duplicate_custom_id",
        ),
        (
            [chat_line("a"), chat_line("b", method="GET")],
            "Line 2: the method must be POST",
            "invalid_method",
        ),
        (
            [chat_line("a", url="/v1/embeddings")],
            "Line 1: the url '/v1/embeddings'",
            "mismatched_url",
        ),
        (
            [{**chat_line("a"), "body": "hello"}],
            "Line 1: body must be a JSON object",
            "invalid_body",
        ),
    ],
)
def test_a_bad_line_is_refused_naming_its_number(sdk, lines, message, code):
    error = refused(sdk, lines)

    assert message in error.message
    assert (error.code, error.param) == (code, "input_file_id")


def test_a_line_asking_to_stream_is_refused(sdk):
    line = chat_line("b")
    line["body"]["stream"] = True

    error = refused(sdk, [chat_line("a"), line])

    assert "Line 2: body.stream is true" in error.message


def test_an_empty_file_is_refused(sdk):
    error = refused(sdk, ["", "   "])

    assert error.body["message"] == "The input file is empty: it has no request line."


def test_a_file_of_more_lines_than_the_limit_is_refused(sdk, settings):
    settings.OPENAI_BATCH_MAX_LINES = 3

    error = refused(sdk, [chat_line(f"q{n}") for n in range(4)])

    assert "Line 4: the input file has more than 3 requests" in error.message


def test_a_file_over_the_byte_limit_is_refused_at_create(sdk, settings):
    lines = [chat_line("a")]
    settings.OPENAI_BATCH_MAX_BYTES = len(jsonl(lines)) - 1
    file = sdk.files.create(file=("a.jsonl", io.BytesIO(b"{}\n")), purpose="batch")
    File.objects.filter(pk=file.id.removeprefix("file-")).update(bytes=len(jsonl(lines)))

    error = refused_for(sdk, file.id)

    assert error.code == "file_too_large"


def refused_for(sdk, file_id):
    with pytest.raises(openai.BadRequestError) as raised:
        sdk.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")
    assert not Batch.objects.exists()
    return raised.value


def test_an_unsupported_endpoint_is_refused(sdk):
    error = refused(sdk, [chat_line("a", url="/v1/responses")], endpoint="/v1/responses")

    assert "'/v1/responses' is not supported" in error.message
    assert error.param == "endpoint"


def test_a_completion_window_other_than_24h_is_refused(sdk):
    error = refused(sdk, [chat_line("a")], completion_window="48h")

    assert error.param == "completion_window"


def test_metadata_of_more_than_16_pairs_is_refused(sdk):
    error = refused(sdk, [chat_line("a")], metadata={f"k{n}": "v" for n in range(17)})

    assert error.param == "metadata"


def test_an_output_file_is_no_batch_input(sdk, live_server):
    file = upload(sdk, [chat_line("a")])
    File.objects.filter(pk=file.id.removeprefix("file-")).update(purpose="batch_output")

    error = refused_for(sdk, file.id)

    assert error.param == "input_file_id"


def test_a_batch_over_the_owner_s_quota_of_waiting_batches_is_a_rate_limit_error(sdk, alice):
    OwnerQuota.objects.create(owner=alice, queued_batches=1)
    sdk.batches.create(
        input_file_id=upload(sdk, [chat_line("a")]).id, endpoint=CHAT, completion_window="24h"
    )

    with pytest.raises(openai.RateLimitError) as refused:
        sdk.batches.create(
            input_file_id=upload(sdk, [chat_line("b")]).id, endpoint=CHAT, completion_window="24h"
        )

    assert "quota" in refused.value.message
    assert Batch.objects.count() == 1


@pytest.mark.parametrize(
    "given",
    [
        {"anchor": "completed_at", "seconds": 3600},
        {"anchor": "created_at", "seconds": 60},
        {"anchor": "created_at", "seconds": "3600"},
        {"anchor": "created_at"},
        {"anchor": "created_at", "seconds": 3600, "unit": "s"},
        3600,
    ],
)
def test_an_output_expiry_other_than_created_at_plus_an_hour_to_30_days_is_refused(sdk, given):
    error = refused(sdk, [chat_line("a")], output_expires_after=given)

    assert error.param == "output_expires_after"
    assert "from 3600 to 2592000" in error.message
