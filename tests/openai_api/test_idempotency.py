"""batches.create with an Idempotency-Key (the SDK sends one when asked, through
extra_headers): a retry gets the batch made the first time, as on /api/v1/batches/."""

import openai
import pytest

from batches.models import Batch, Interaction
from openai_api import ids
from tests.support.openai_sdk import CHAT, chat_line, upload

pytestmark = pytest.mark.django_db(transaction=True)


def create(sdk, file, key: str, **more):
    return sdk.batches.create(
        input_file_id=file.id,
        endpoint=CHAT,
        completion_window="24h",
        extra_headers={"Idempotency-Key": key},
        **more,
    )


def test_a_create_sent_again_with_its_key_gets_the_same_batch_and_creates_nothing(sdk):
    file = upload(sdk, [chat_line("a"), chat_line("b")])
    first = create(sdk, file, "create-1", metadata={"run": "7"})
    again = create(sdk, file, "create-1", metadata={"run": "7"})

    assert again.id == first.id
    assert again.metadata == {"run": "7"}
    assert Batch.objects.count() == 1
    assert Interaction.objects.count() == 2


@pytest.mark.parametrize(
    "other",
    [
        {"metadata": {"run": "8"}},
        {
            "metadata": {"run": "7"},
            "output_expires_after": {"anchor": "created_at", "seconds": 3600},
        },
    ],
)
def test_a_key_used_for_another_request_is_refused_and_creates_nothing(sdk, other):
    file = upload(sdk, [chat_line("a")])
    first = create(sdk, file, "create-1", metadata={"run": "7"})
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        create(sdk, file, "create-1", **other)

    message = raised.value.body["message"]
    assert "This Idempotency-Key was already used for a different request" in message
    assert "metadata, output expiry" in message
    assert list(Batch.objects.values_list("pk", flat=True)) == [ids.batch_pk(first.id)]


def test_the_same_request_under_two_keys_makes_two_batches(sdk):
    file = upload(sdk, [chat_line("a")])
    assert create(sdk, file, "create-1").id != create(sdk, file, "create-2").id
    assert Batch.objects.count() == 2


def test_a_key_longer_than_the_limit_is_refused_naming_the_header(sdk):
    file = upload(sdk, [chat_line("a")])
    with pytest.raises(openai.BadRequestError) as raised:
        create(sdk, file, "k" * 500)
    assert "The Idempotency-Key header is longer than" in raised.value.body["message"]
    assert not Batch.objects.exists()
