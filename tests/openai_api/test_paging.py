"""Lists as OpenAI pages them: newest first, ``after`` an id, ``limit``, ``has_more``."""

import openai
import pytest

from tests.support.openai_sdk import chat_line, create_batch, upload

pytestmark = pytest.mark.django_db(transaction=True)


def test_batches_are_listed_newest_first_a_page_at_a_time(sdk):
    created = [create_batch(sdk, [chat_line(f"q{n}")]).id for n in range(5)]
    newest_first = created[::-1]

    first = sdk.batches.list(limit=2)
    second = sdk.batches.list(limit=2, after=first.data[-1].id)
    last = sdk.batches.list(limit=2, after=second.data[-1].id)

    assert [b.id for b in first.data] == newest_first[:2]
    assert [b.id for b in second.data] == newest_first[2:4]
    assert [b.id for b in last.data] == newest_first[4:]
    assert (first.has_more, second.has_more, last.has_more) == (True, True, False)
    assert (first.first_id, first.last_id) == (newest_first[0], newest_first[1])
    assert [b.id for b in sdk.batches.list(limit=2)] == newest_first  # the SDK follows pages


def test_files_are_listed_in_either_order_and_by_purpose(sdk):
    created = [upload(sdk, [chat_line(f"q{n}")]).id for n in range(3)]

    oldest_first = sdk.files.list(order="asc", limit=2)

    assert [f.id for f in oldest_first.data] == created[:2]
    assert [f.id for f in sdk.files.list(order="asc", after=created[1])] == created[2:]
    assert [f.id for f in sdk.files.list()] == created[::-1]
    assert list(sdk.files.list(purpose="batch_output")) == []


@pytest.mark.parametrize("limit", [0, 101])
def test_a_batch_list_limit_outside_1_to_100_is_refused(sdk, limit):
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.batches.list(limit=limit)

    assert refused.value.param == "limit"


def test_after_naming_no_listed_object_is_refused(sdk):
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.batches.list(after="batch_" + "0" * 32)

    assert refused.value.param == "after"


@pytest.mark.parametrize(
    ("listing", "name"), [("batches", "order"), ("batches", "purpose"), ("files", "sort")]
)
def test_a_query_parameter_the_list_does_not_take_is_refused(sdk, listing, name):
    with pytest.raises(openai.BadRequestError) as refused:
        getattr(sdk, listing).list(extra_query={name: "x"})

    assert refused.value.param == name
    assert f"Unrecognized request argument supplied: {name}." in refused.value.message
