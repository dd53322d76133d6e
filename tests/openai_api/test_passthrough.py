"""The openai_batch processor against the stub provider: a line's body sent as it is
to its endpoint, the provider's whole answer kept, nothing sent past expires_at."""

import json
import time

import pytest

from batches.processors.passthrough import LineError, PassthroughProcessor, lines_per_claim
from tests.support.provider import COMPLETION_TOKENS, PROMPT_TOKENS
from tests.support.stubs import closed_port_url

pytestmark = pytest.mark.django_db


def processor(endpoint="/v1/chat/completions", **options):
    return PassthroughProcessor({"endpoint": endpoint, **options})


def line(body: dict, url="/v1/chat/completions") -> dict:
    return {"custom_id": "a", "method": "POST", "url": url, "body": body}


def failure(processor, body, url="/v1/chat/completions") -> dict:
    with processor, pytest.raises(LineError) as failed:
        processor.process(line(body, url), [])
    return json.loads(str(failed.value))


def test_a_line_s_body_is_sent_as_it_is_and_the_whole_answer_kept(provider):
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 7, "n": 1}

    with processor() as chat:
        output = chat.process(line(body), [])

    assert provider.requests == [("/v1/chat/completions", body)]
    assert output["status_code"] == 200
    assert output["request_id"] == "req_stub_1"
    assert output["body"]["choices"][0]["message"]["content"] == "answer to hi"
    assert output["text"] == "answer to hi"
    assert output["usage"] == {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": COMPLETION_TOKENS,
        "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    }


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [("/v1/embeddings", {"model": "e", "input": "hi"}), ("/v1/completions", {"prompt": "hi"})],
)
def test_each_endpoint_is_sent_to_its_own_path(provider, endpoint, body):
    with processor(endpoint) as sender:
        output = sender.process(line(body, endpoint), [])

    assert provider.requests == [(endpoint, body)]
    assert output["usage"]["prompt_tokens"] == PROMPT_TOKENS


def test_a_provider_s_4xx_fails_the_line_with_its_status_and_body(provider):
    refused = failure(processor(), {"messages": [], "stub": {"status": 400}})

    assert refused["status_code"] == 400
    assert refused["request_id"] == "req_stub_1"
    assert refused["body"]["error"]["message"] == "stub refused with 400"
    assert len(provider.requests) == 1  # a 4xx is not tried again


def test_a_provider_s_5xx_is_retried_before_the_line_fails(provider, settings):
    settings.BATCH_PROCESSOR_RETRIES = 2

    refused = failure(processor(), {"messages": [], "stub": {"status": 503}})

    assert refused["status_code"] == 503
    assert len(provider.requests) == 3


def test_nothing_is_sent_once_the_batch_s_window_has_passed(provider):
    expired = failure(processor(expires_at=time.time() - 1), {"messages": []})

    assert expired["code"] == "batch_expired"
    assert provider.requests == []


def test_a_provider_it_cannot_reach_fails_the_line_as_never_answered(settings):
    settings.OPENAI_BASE_URL = closed_port_url()

    unreachable = failure(processor(), {"messages": []})

    assert unreachable["code"] == "provider_unavailable"
    assert "could not connect" in unreachable["message"]


def test_an_endpoint_other_than_the_three_is_refused(provider):
    with pytest.raises(ValueError, match="endpoint must be one of"):
        processor("/v1/responses")


@pytest.mark.parametrize(("lines", "run"), [(100, 1), (1_000, 3), (10_000, 20), (10**6, 20)])
def test_a_claim_takes_a_run_of_lines_short_enough_for_the_widest_batch(lines, run, settings):
    settings.BATCH_CONCURRENCY_MAX = 32
    assert lines_per_claim(lines) == run
