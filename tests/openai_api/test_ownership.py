"""Another owner's files and batches answer exactly as missing ones do: 404."""

import openai
import pytest

from tests.support.openai_sdk import CHAT, chat_line, create_batch, upload

pytestmark = pytest.mark.django_db(transaction=True)

MISSING_FILE = "file-" + "0" * 32
MISSING_BATCH = "batch_" + "0" * 32


def not_found(call, *args, **kwargs) -> dict:
    with pytest.raises(openai.NotFoundError) as raised:
        call(*args, **kwargs)
    body = raised.value.body
    return {key: body[key] for key in ("type", "param", "code")}


def test_another_owner_s_file_is_as_missing_as_a_missing_one(sdk, sdk_bob):
    file = upload(sdk, [chat_line("q")])

    for call in (sdk_bob.files.retrieve, sdk_bob.files.content, sdk_bob.files.delete):
        assert not_found(call, file.id) == not_found(call, MISSING_FILE)
    assert not_found(
        sdk_bob.batches.create, input_file_id=file.id, endpoint=CHAT, completion_window="24h"
    ) == not_found(
        sdk_bob.batches.create, input_file_id=MISSING_FILE, endpoint=CHAT, completion_window="24h"
    )
    assert list(sdk_bob.files.list()) == []
    assert sdk.files.retrieve(file.id).id == file.id


def test_another_owner_s_batch_is_as_missing_as_a_missing_one(sdk, sdk_bob):
    batch = create_batch(sdk, [chat_line("q")])

    for call in (sdk_bob.batches.retrieve, sdk_bob.batches.cancel):
        assert not_found(call, batch.id) == not_found(call, MISSING_BATCH)
    assert list(sdk_bob.batches.list()) == []
    assert sdk.batches.retrieve(batch.id).status == "validating"


def test_an_id_of_another_shape_is_a_404_too(sdk):
    assert not_found(sdk.batches.retrieve, "not-a-batch")["code"] == "not_found"
    assert not_found(sdk.files.retrieve, "file-abc")["param"] == "file_id"
