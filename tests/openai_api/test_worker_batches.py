"""Batches of the OpenAI-compatible API run by a real ``db_worker`` against the stub
provider, driven by the openai SDK from creation to their result files."""

import json
import time

import httpx
import pytest
from rest_framework.authtoken.models import Token

from batches.models import Batch, Interaction, InteractionStatus, Worker
from tests.support.openai_sdk import chat_line, create_batch, custom_ids, file_lines, wait_for
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_batch_runs_from_creation_to_its_output_and_error_files(
    sdk, provider, start_worker, live_server, alice
):
    lines = [chat_line(f"q{n}") for n in range(4)]
    lines.insert(2, chat_line("refused", status=400))
    start_worker()

    created = create_batch(sdk, lines, metadata={"job": "nightly"})
    done = wait_for(sdk, created.id)

    assert created.status == "validating"
    assert (done.status, done.metadata, done.model) == (
        "completed",
        {"job": "nightly"},
        "stub-model",
    )
    assert done.request_counts.model_dump() == {"total": 5, "completed": 4, "failed": 1}
    assert done.in_progress_at and done.finalizing_at and done.completed_at
    assert done.expires_at == done.created_at + 24 * 60 * 60
    assert (done.usage.input_tokens, done.usage.output_tokens, done.usage.total_tokens) == (
        4 * 7,
        4 * 3,
        4 * 10,
    )
    output = file_lines(sdk, done.output_file_id)
    assert custom_ids(output) == ["q0", "q1", "q2", "q3"]
    first = output[0]
    assert first["error"] is None
    assert first["response"]["status_code"] == 200
    assert first["response"]["request_id"].startswith("req_stub_")
    assert first["response"]["body"]["choices"][0]["message"]["content"] == "answer to q0"
    [error] = file_lines(sdk, done.error_file_id)
    assert (error["custom_id"], error["error"]) == ("refused", None)
    assert error["response"]["status_code"] == 400
    assert error["response"]["body"]["error"]["message"] == "stub refused with 400"
    # Each body went to the provider as it was in the file.
    assert sorted(map(canonical, (body for _, body in provider.requests))) == sorted(
        canonical(line["body"]) for line in lines
    )
    content = sdk.files.content(done.output_file_id).content
    assert sdk.files.retrieve(done.output_file_id).bytes == len(content)
    # The same batch, on the rest of the API.
    token = Token.objects.get(user=alice).key
    pk = created.id.removeprefix("batch_")
    mine = httpx.get(
        f"{live_server.url}/api/v1/batches/{Batch.objects.get().pk}/",
        headers={"Authorization": f"Token {token}"},
    ).json()
    assert (mine["id"].replace("-", ""), mine["processor"]) == (pk, "openai_batch")


def test_a_cancelled_batch_keeps_its_finished_lines_and_never_sends_the_rest(
    sdk, provider, start_worker
):
    lines = [chat_line(f"q{n}", hold=True) for n in range(10)]
    start_worker(BATCH_CONCURRENCY=2)
    created = create_batch(sdk, lines, extra_body={"concurrency": 2})
    wait_until(lambda: provider.held() == 2, message="two lines at the provider")

    cancelling = sdk.batches.cancel(created.id)
    provider.release()
    cancelled = wait_for(sdk, created.id, statuses=("cancelled",))

    assert cancelling.status == "cancelling"
    assert cancelled.cancelling_at <= cancelled.cancelled_at
    sent = provider.questions()
    assert len(sent) == 2
    output, errors = (
        file_lines(sdk, cancelled.output_file_id),
        file_lines(sdk, cancelled.error_file_id),
    )
    assert sorted(custom_ids(output)) == sorted(sent)
    assert {line["error"]["code"] for line in errors} == {"batch_cancelled"}
    assert sorted(custom_ids(output) + custom_ids(errors)) == sorted(f"q{n}" for n in range(10))
    assert cancelled.request_counts.model_dump() == {"total": 10, "completed": 2, "failed": 8}


def test_lines_claimed_in_runs_are_each_sent_alone_as_they_are(
    sdk, provider, start_worker, monkeypatch
):
    monkeypatch.setattr("openai_api.services.lines_per_claim", lambda total: 4)
    lines = [chat_line(f"q{n:02}") for n in range(12)]
    lines[5] = chat_line("refused", status=400)  # inside the second run
    start_worker(BATCH_CONCURRENCY=2)

    done = wait_for(sdk, create_batch(sdk, lines).id)

    conversations = Interaction.objects.order_by("row_number").values_list(
        "conversation", flat=True
    )
    assert list(conversations) == [1] * 4 + [2] * 4 + [3] * 4
    assert done.request_counts.model_dump() == {"total": 12, "completed": 11, "failed": 1}
    # One request a line, its body as in the file: no history from the run's others.
    assert sorted(map(canonical, (body for _, body in provider.requests))) == sorted(
        canonical(line["body"]) for line in lines
    )
    assert custom_ids(file_lines(sdk, done.error_file_id)) == ["refused"]


@pytest.mark.parametrize("run", [1, 4])
def test_a_killed_worker_s_batch_ends_with_every_line_in_exactly_one_file(
    sdk, provider, start_worker, monkeypatch, run
):
    monkeypatch.setattr("openai_api.services.lines_per_claim", lambda total: run)
    names = [f"q{n:02}" for n in range(30)]
    first = start_worker(BATCH_CONCURRENCY=3)
    created = create_batch(sdk, [chat_line(name, delay=0.05) for name in names])
    succeeded = Interaction.objects.filter(status=InteractionStatus.SUCCEEDED)
    wait_until(lambda: succeeded.count() >= 6, message="a few lines answered")

    first.kill()
    in_flight = {item.input["custom_id"] for item in Interaction.objects.filter(status="running")}
    finished = sorted(item.input["custom_id"] for item in succeeded)
    partial = sdk.batches.retrieve(created.id)
    assert partial.status == "in_progress"
    assert custom_ids(file_lines(sdk, partial.output_file_id)) == finished

    start_worker(BATCH_CONCURRENCY=3, BATCH_STALE_AFTER=2)
    done = wait_for(sdk, created.id)

    output = custom_ids(file_lines(sdk, done.output_file_id))
    errors = custom_ids(file_lines(sdk, done.error_file_id))
    assert (done.status, sorted(output + errors)) == ("completed", names)
    assert set(finished) <= set(output)
    sent = provider.questions()
    twice = {name for name in set(sent) if sent.count(name) > 1}
    assert twice <= in_flight
    assert set(sent) == set(names)


def test_lines_not_sent_by_the_end_of_the_window_expire_into_the_error_file(
    sdk, provider, start_worker, settings
):
    settings.OPENAI_BATCH_WINDOW_SECONDS = 2
    start_worker(BATCH_CONCURRENCY=1)
    wait_until(Worker.objects.exists, message="the worker's first heartbeat")
    lines = [chat_line("first", hold=True)] + [chat_line(f"q{n}") for n in range(4)]
    created = create_batch(sdk, lines, extra_body={"concurrency": 1})
    wait_until(lambda: provider.held() == 1, message="the first line at the provider")

    wait_until(lambda: time.time() > created.expires_at, message="the window's end")
    provider.release()
    expired = wait_for(sdk, created.id)

    assert expired.status == "expired"
    assert expired.expired_at >= expired.expires_at
    assert provider.questions() == ["first"]
    assert custom_ids(file_lines(sdk, expired.output_file_id)) == ["first"]
    errors = file_lines(sdk, expired.error_file_id)
    assert custom_ids(errors) == ["q0", "q1", "q2", "q3"]
    assert {(line["response"], line["error"]["code"]) for line in errors} == {
        (None, "batch_expired")
    }
    assert expired.request_counts.model_dump() == {"total": 5, "completed": 1, "failed": 4}


def canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True)
