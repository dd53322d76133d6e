"""batches.processors: echo in-process; http and openai against stub HTTP servers
run by the tests on 127.0.0.1 (they stand in for a third party's model API)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate

import pytest

from batches.processors import connections
from batches.processors import http as network
from batches.processors.base import (
    Processor,
    ProcessorError,
    UnknownOptions,
    get_processor,
    processor_names,
)
from batches.processors.echo import EchoProcessor
from batches.processors.http import HttpProcessor
from batches.processors.openai import OpenAIProcessor, estimate_tokens
from tests.support.stubs import Stub, closed_port_url
from tests.support.tls import self_signed
from tests.support.waiting import wait_until

# Every network call reads its lane's pause (batches.processors.lanes), kept in the database.
pytestmark = pytest.mark.django_db

HISTORY = [
    {"input": {"question": "Hello?"}, "output": {"text": "Hi there."}},
    {"input": {"question": "Still there?"}, "output": {"text": "Yes."}},
]


@pytest.fixture
def http(settings, stub):
    settings.BATCH_HTTP_URL = stub.url + "/answer"
    with HttpProcessor({"language": "fr"}) as processor:
        yield processor


@pytest.fixture
def openai(settings, stub):
    settings.OPENAI_BASE_URL = stub.url + "/v1/"
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_MODEL = "default-model"
    stub.default = {
        "json": {
            "model": "served-model",
            "choices": [{"message": {"role": "assistant", "content": "Paris."}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
        }
    }
    return stub


# Registry ----------------------------------------------------------------------


class ShoutProcessor(Processor):
    name = "shout"

    def process(self, input, history):
        return {"text": input["question"].upper()}


def test_the_processors_are_named_in_settings():
    assert processor_names() == ["echo", "http", "openai"]


def test_get_processor_builds_the_class_registered_under_a_name(settings):
    settings.BATCH_PROCESSORS = {"shout": f"{__name__}.ShoutProcessor"}
    assert processor_names() == ["shout"]
    assert get_processor("shout", {}).process({"question": "hi"}, []) == {"text": "HI"}


def test_an_unknown_processor_name_is_refused_with_the_choices():
    with pytest.raises(ValueError) as caught:
        get_processor("gpt", {})
    assert str(caught.value) == "Unknown processor 'gpt'; choose one of: echo, http, openai."


def test_options_that_are_not_an_object_are_refused():
    with pytest.raises(ValueError, match="JSON object"):
        get_processor("echo", ["delay"])


# Echo --------------------------------------------------------------------------


def test_echo_answers_with_the_question_and_the_turn_of_the_conversation():
    echo = get_processor("echo", {})
    assert echo.process({"question": "Why?"}, []) == {"text": "echo: Why? (turn 1)", "turn": 1}
    assert echo.process({"question": "Why?"}, HISTORY)["text"] == "echo: Why? (turn 3)"


def test_echo_is_deterministic():
    first = EchoProcessor({}).process({"question": "Same?", "chat_id": "a"}, HISTORY)
    assert EchoProcessor({}).process({"question": "Same?", "chat_id": "a"}, HISTORY) == first


def test_echo_sleeps_for_its_delay(monkeypatch):
    sleeps = []
    monkeypatch.setattr(network.time, "sleep", sleeps.append)
    EchoProcessor({"delay": 0.05}).process({"question": "a"}, [])
    EchoProcessor({"delay": 10}).process({"question": "b"}, [])
    EchoProcessor({}).process({"question": "c"}, [])
    assert sleeps == [0.05, 10.0]


@pytest.mark.parametrize("delay", ["1", -1, True, None, 11, 1e9, float("nan"), float("inf")])
def test_echo_refuses_a_delay_outside_0_to_10_seconds_saying_the_range(delay):
    with pytest.raises(ValueError, match=r"delay must be a number of seconds from 0 to 10, not "):
        EchoProcessor({"delay": delay})


# http ----------------------------------------------------------------------------


def test_http_posts_the_input_history_and_options_and_keeps_the_answer(http, stub):
    stub.replies = [{"json": {"text": "Bonjour.", "sources": ["a"]}}]
    output = http.process({"question": "Hello?", "chat_id": "c1"}, HISTORY)
    assert output == {"text": "Bonjour.", "sources": ["a"]}
    assert stub.requests == [
        {
            "path": "/answer",
            "headers": stub.requests[0]["headers"],
            "json": {
                "input": {"question": "Hello?", "chat_id": "c1"},
                "history": HISTORY,
                "options": {"language": "fr"},
            },
        }
    ]


def test_http_stores_an_answer_without_text_as_its_json(http, stub):
    stub.replies = [{"json": {"answer": "42"}}]
    assert http.process({"question": "?"}, []) == {"answer": "42", "text": '{"answer": "42"}'}


def test_http_refuses_an_answer_that_is_not_a_json_object(http, stub):
    stub.replies = [{"json": ["a", "list"]}]
    with pytest.raises(ProcessorError, match="not a JSON object"):
        http.process({"question": "?"}, [])


def test_http_refuses_an_answer_that_is_not_json(http, stub):
    stub.replies = [{"raw": b"<html>oops</html>"}]
    with pytest.raises(ProcessorError, match="not JSON"):
        http.process({"question": "?"}, [])


def test_http_retries_two_503s_then_takes_the_answer(http, stub):
    stub.replies = [{"status": 503}, {"status": 503}, {"json": {"text": "at last"}}]
    assert http.process({"question": "?"}, [])["text"] == "at last"
    assert len(stub.requests) == 3


def test_http_retries_a_429_and_a_dropped_connection(http, stub):
    stub.replies = [{"status": 429, "headers": {"Retry-After": "0"}}, {"hang_up": True}]
    assert http.process({"question": "?"}, [])["text"] == "stub answer"
    assert len(stub.requests) == 3


def test_http_retries_any_server_error_not_only_the_usual_ones(http, stub):
    stub.replies = [{"status": 520}, {"status": 529}, {"status": 599}]
    assert http.process({"question": "?"}, [])["text"] == "stub answer"
    assert len(stub.requests) == 4


@pytest.fixture
def sleeps(monkeypatch):
    """The delays the processor asks to sleep, without sleeping."""
    asked = []
    monkeypatch.setattr(network.time, "sleep", asked.append)
    return asked


def test_http_waits_as_long_as_a_retry_after_given_as_an_http_date_says(http, stub, sleeps):
    when = formatdate(time.time() + 5, usegmt=True)
    stub.replies = [{"status": 503, "headers": {"Retry-After": when}}]
    assert http.process({"question": "?"}, [])["text"] == "stub answer"
    assert len(sleeps) == 1
    assert 3 < sleeps[0] <= 5  # the date has whole seconds; the clock has moved on


def test_http_waits_for_a_retry_after_in_seconds_and_ignores_one_it_cannot_read(http, stub, sleeps):
    stub.replies = [
        {"status": 503, "headers": {"Retry-After": "7"}},
        {"status": 429, "headers": {"Retry-After": "soon"}},
        {"status": 503, "headers": {"Retry-After": formatdate(time.time() - 60, usegmt=True)}},
    ]
    assert http.process({"question": "?"}, [])["text"] == "stub answer"
    assert sleeps[0] == 7
    assert sleeps[1] < 1 and sleeps[2] < 1  # the backoff alone


def test_http_fails_after_the_retries_when_the_server_keeps_failing(http, stub):
    stub.default = {"status": 500, "raw": b"database is down"}
    with pytest.raises(ProcessorError) as caught:
        http.process({"question": "?"}, [])
    assert str(caught.value) == "http processor: HTTP 500 Internal Server Error: database is down."
    assert len(stub.requests) == 4  # the first try and three retries


def test_http_fails_at_once_on_a_client_error(http, stub):
    stub.replies = [{"status": 422, "json": {"error": "question too long"}}]
    with pytest.raises(ProcessorError, match="HTTP 422 Unprocessable Entity"):
        http.process({"question": "?"}, [])
    assert len(stub.requests) == 1


def test_http_gives_up_on_a_server_that_does_not_answer_in_time(settings, http, stub):
    settings.BATCH_PROCESSOR_TIMEOUT = 0.1
    settings.BATCH_PROCESSOR_RETRIES = 1
    stub.default = {"delay": 0.5}
    with HttpProcessor({}) as slow, pytest.raises(ProcessorError) as caught:
        slow.process({"question": "?"}, [])
    assert str(caught.value) == "http processor: no answer within the timeout."
    assert len(stub.requests) == 2


def test_http_reports_a_server_it_cannot_connect_to(settings):
    settings.BATCH_HTTP_URL = closed_port_url()
    with HttpProcessor({}) as processor, pytest.raises(ProcessorError) as caught:
        processor.process({"question": "?"}, [])
    assert str(caught.value) == "http processor: could not connect."


def test_http_is_refused_when_no_url_is_configured(settings):
    settings.BATCH_HTTP_URL = ""
    with pytest.raises(ValueError, match="BATCH_HTTP_URL"):
        get_processor("http", {})


def test_http_sends_requests_only_to_the_configured_url(settings, stub, elsewhere):
    settings.BATCH_HTTP_URL = stub.url + "/answer"
    options = {"url": elsewhere.url, "base_url": elsewhere.url, "BATCH_HTTP_URL": elsewhere.url}
    with get_processor("http", options) as processor:
        processor.process({"question": "?", "url": elsewhere.url}, [])
    assert len(stub.requests) == 1
    assert elsewhere.requests == []


def test_http_does_not_follow_a_redirect(http, stub, elsewhere):
    stub.replies = [{"status": 307, "headers": {"Location": elsewhere.url + "/steal"}}]
    with pytest.raises(ProcessorError, match="HTTP 307"):
        http.process({"question": "?"}, [])
    assert elsewhere.requests == []


def test_one_http_processor_serves_several_threads(http, stub):
    with ThreadPoolExecutor(max_workers=8) as pool:
        outputs = list(pool.map(lambda n: http.process({"question": n}, []), range(40)))
    assert [output["text"] for output in outputs] == ["stub answer"] * 40
    assert sorted(r["json"]["input"]["question"] for r in stub.requests) == list(range(40))


@pytest.fixture
def kept(settings):
    """An http processor and a stub that keeps connections open (HTTP/1.1)."""
    server = Stub(keep_alive=True)
    settings.BATCH_HTTP_URL = server.url + "/answer"
    settings.BATCH_PROCESSOR_RETRIES = 0  # a connection lost is not hidden by a retry
    with HttpProcessor({}) as processor:
        yield processor, server
    server.stop()


def test_http_sends_the_items_of_a_thread_on_one_kept_alive_connection(kept):
    processor, server = kept
    for n in range(5):
        assert processor.process({"question": n}, [])["text"] == "stub answer"
    assert len(server.requests) == 5
    assert server.connections == 1


def test_http_takes_a_new_connection_when_the_server_closed_the_idle_one(kept):
    processor, server = kept
    server.default = {"json": {"text": "stub answer"}, "close_after": True}
    for n in range(1, 4):
        # the stub closes each connection once it has answered, without saying so
        assert processor.process({"question": n}, [])["text"] == "stub answer"
        wait_until(lambda n=n: server.closed == n, message="the stub to close the connection")
    assert len(server.requests) == 3
    assert server.connections == 3


def test_http_calls_a_provider_over_tls_on_one_kept_alive_connection(
    settings, tmp_path, monkeypatch
):
    server_tls, client_tls = self_signed(tmp_path)
    server = Stub(keep_alive=True, tls=server_tls)
    monkeypatch.setattr(connections, "_tls", lambda: client_tls)  # trusts the stub
    settings.BATCH_HTTP_URL = server.url + "/answer"
    try:
        with HttpProcessor({}) as processor:
            for n in range(3):
                assert processor.process({"question": n}, [])["text"] == "stub answer"
    finally:
        server.stop()
    assert [r["json"]["input"]["question"] for r in server.requests] == [0, 1, 2]
    assert server.connections == 1


def test_http_refuses_a_provider_whose_certificate_it_does_not_trust(settings, tmp_path):
    server_tls, _ = self_signed(tmp_path)
    server = Stub(keep_alive=True, tls=server_tls)
    settings.BATCH_HTTP_URL = server.url + "/answer"
    settings.BATCH_PROCESSOR_RETRIES = 0
    try:
        with HttpProcessor({}) as processor, pytest.raises(ProcessorError) as caught:
            processor.process({"question": "?"}, [])
    finally:
        server.stop()
    assert str(caught.value) == "http processor: could not connect."
    assert server.requests == []


@pytest.mark.parametrize("framing", ["chunked", "unsized"])
def test_http_reads_an_answer_sent_in_chunks_or_ended_by_closing_the_connection(kept, framing):
    processor, server = kept
    server.default = {"json": {"text": "framed answer"}, "framing": framing}
    for n in range(2):
        assert processor.process({"question": n}, [])["text"] == "framed answer"
    # a chunked answer leaves the connection open; one ended by closing it does not
    assert server.connections == (1 if framing == "chunked" else 2)


def test_http_fails_an_answer_that_is_not_http(kept):
    processor, server = kept
    server.default = {
        "raw": b"",
        "status": 101,
        "headers": {"Upgrade": "websocket", "Connection": "Upgrade"},
    }
    with pytest.raises(ProcessorError) as caught:
        processor.process({"question": "?"}, [])
    assert str(caught.value) == "http processor: the connection failed (ReadError)."


def test_http_fails_an_answer_cut_short_and_retries_it(kept, settings):
    processor, server = kept
    server.replies = [{"json": {"text": "cut"}, "framing": "cut"}]
    with pytest.raises(ProcessorError) as caught:
        processor.process({"question": "?"}, [])
    assert str(caught.value) == "http processor: the connection failed (ReadError)."

    settings.BATCH_PROCESSOR_RETRIES = 1
    server.replies = [{"json": {"text": "cut"}, "framing": "cut"}]
    with HttpProcessor({}) as retrying:
        assert retrying.process({"question": "?"}, [])["text"] == "stub answer"


# openai ----------------------------------------------------------------------


def test_openai_sends_the_conversation_as_chat_messages(openai):
    options = {"model": "small-model", "system_prompt": "Answer briefly."}
    output = get_processor("openai", options).process({"question": "Capital of France?"}, HISTORY)
    assert output == {
        "text": "Paris.",
        "model": "served-model",
        "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14},
    }
    [request] = openai.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["json"] == {
        "model": "small-model",
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Hello?"},
            {"role": "assistant", "content": "Hi there."},
            {"role": "user", "content": "Still there?"},
            {"role": "assistant", "content": "Yes."},
            {"role": "user", "content": "Capital of France?"},
        ],
    }


def test_openai_uses_the_default_model_and_no_system_message_without_options(openai):
    OpenAIProcessor({}).process({"question": "Hi?"}, [])
    assert openai.requests[0]["json"] == {
        "model": "default-model",
        "messages": [{"role": "user", "content": "Hi?"}],
    }


def test_openai_sends_only_the_question_of_an_exchange_that_has_no_answer(openai):
    history = [{"input": {"question": "Failed?"}, "output": {}}]
    OpenAIProcessor({}).process({"question": "Next?"}, history)
    assert openai.requests[0]["json"]["messages"] == [
        {"role": "user", "content": "Failed?"},
        {"role": "user", "content": "Next?"},
    ]


def test_openai_retries_two_503s_then_takes_the_answer(openai):
    openai.replies = [{"status": 503}, {"status": 503}]
    assert OpenAIProcessor({}).process({"question": "?"}, [])["text"] == "Paris."
    assert len(openai.requests) == 3


def test_openai_fails_at_once_when_the_key_is_refused(openai):
    openai.replies = [{"status": 401, "json": {"error": {"message": "Incorrect API key"}}}]
    with pytest.raises(ProcessorError, match=r"HTTP 401 Unauthorized: .*Incorrect API key"):
        OpenAIProcessor({}).process({"question": "?"}, [])
    assert len(openai.requests) == 1


def test_openai_refuses_an_answer_without_a_message(openai):
    openai.replies = [{"json": {"choices": []}}]
    with pytest.raises(ProcessorError, match="no message"):
        OpenAIProcessor({}).process({"question": "?"}, [])


def test_openai_calls_only_the_configured_base_url(openai, elsewhere):
    OpenAIProcessor({}).process({"question": "?", "url": elsewhere.url}, [])
    assert len(openai.requests) == 1
    assert elsewhere.requests == []


def test_openai_refuses_options_naming_another_address(openai, elsewhere):
    options = {"base_url": elsewhere.url, "url": elsewhere.url, "api_base": elsewhere.url}
    with pytest.raises(ValueError, match="takes no options 'base_url', 'url', 'api_base'"):
        OpenAIProcessor(options)
    assert elsewhere.requests == []


def test_a_processor_refuses_an_option_it_does_not_take_and_lists_those_it_does():
    with pytest.raises(UnknownOptions) as caught:
        EchoProcessor({"language": "en"})
    assert str(caught.value).startswith("The echo processor takes no option 'language'; it takes:")
    assert "delay: seconds per item" in str(caught.value)
    assert caught.value.details == {
        "unknown_options": ["language"],
        "accepted_options": EchoProcessor.accepts,
    }
    assert set(EchoProcessor.accepts) == {"delay", "lang", "search_provider", "apply_overrides"}


def test_every_processor_takes_the_seed_form_options():
    options = {"lang": "en", "search_provider": "web", "apply_overrides": True}
    assert EchoProcessor(options).options == options


def test_the_http_processor_passes_on_options_it_does_not_know(http):
    assert HttpProcessor({"language": "fr", "k": 1}).options == {"language": "fr", "k": 1}


def test_openai_is_not_configured_without_a_base_url(settings):
    settings.OPENAI_BASE_URL = ""
    with pytest.raises(ValueError, match=r"openai processor is not configured \(OPENAI_BASE_URL"):
        get_processor("openai", {})


def test_openai_is_not_configured_without_a_key_for_the_hosted_api(settings):
    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = "https://api.openai.com/v1", ""
    with pytest.raises(ValueError) as caught:
        get_processor("openai", {})
    assert str(caught.value) == (
        "The openai processor is not configured (OPENAI_API_KEY is empty, and api.openai.com "
        "needs a key)."
    )


def test_openai_needs_no_key_for_a_server_of_its_own(settings):
    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = "http://127.0.0.1:9/v1", ""
    with get_processor("openai", {}) as processor:
        assert processor.url == "http://127.0.0.1:9/v1/chat/completions"


@pytest.mark.parametrize("options", [{"model": 4}, {"system_prompt": ["a"]}])
def test_openai_refuses_options_that_are_not_text(openai, options):
    with pytest.raises(ValueError, match="must be text"):
        OpenAIProcessor(options)


# Rate limits (batches.processors.lanes) -------------------------------------------------------


def test_a_429_with_retry_after_pauses_the_lane_and_spends_no_retry(settings, http, stub):
    settings.BATCH_PROCESSOR_RETRIES = 0
    stub.replies = [{"status": 429, "headers": {"Retry-After": "0"}}] * 3
    assert http.process({"question": "?"}, [])["text"] == "stub answer"
    assert len(stub.requests) == 4


def test_a_429_without_retry_after_spends_a_retry(settings, http, stub):
    settings.BATCH_PROCESSOR_RETRIES = 1
    stub.replies = [{"status": 429}, {"status": 429}]
    with pytest.raises(ProcessorError, match="HTTP 429"):
        http.process({"question": "?"}, [])
    assert len(stub.requests) == 2


@pytest.mark.django_db(transaction=True)  # the call's thread has a connection of its own
def test_a_429_pauses_the_lane_for_everyone_and_a_stopping_worker_leaves_the_wait(http, stub):
    from django.db import connection

    from batches.engine.counters import stopping
    from batches.processors import lanes
    from tests.support.waiting import wait_until

    stub.replies = [{"status": 429, "headers": {"Retry-After": "30"}}]
    outcome = []

    def call():
        try:
            outcome.append(http.process({"question": "?"}, []))
        except lanes.Interrupted as exc:
            outcome.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=call)
    thread.start()
    try:
        until = wait_until(lambda: lanes.paused_until("http"), message="the lane's pause")
        # Another processor of the lane (another worker) waits for the same pause.
        assert lanes.backend().paused_for("http") > 25
        assert lanes.limited_until("http") == until
    finally:
        stopping.set()
        thread.join()
        stopping.clear()
    assert isinstance(outcome[0], lanes.Interrupted)
    assert len(stub.requests) == 1  # nothing sent during the pause


def test_openai_corrects_the_lanes_token_estimate_from_the_answers_usage(settings, openai):
    from batches.models import Lane as LaneRow

    settings.BATCH_RATE_LIMITS = {"openai": {"requests_per_minute": 600, "tokens_per_minute": 6000}}
    processor = OpenAIProcessor({})
    assert estimate_tokens([{"role": "user", "content": "Capital of France?"}]) == 9

    processor.process({"question": "Capital of France?"}, [])

    row = LaneRow.objects.get(name="openai")
    start = row.requests_at - 60 * 1.01 / 600
    # The estimate (9) was replaced by what the answer used (14).
    assert round((row.tokens_at - start) / (60 * 1.01 / 6000), 2) == 14
    assert processor.completions.value == 2  # the next call also expects 2 completion tokens


def test_a_batch_may_lower_the_rate_limits_but_not_raise_them(settings, openai):
    settings.BATCH_RATE_LIMITS = {"openai": {"requests_per_minute": 500}}
    OpenAIProcessor({"requests_per_minute": 100, "tokens_per_minute": 1000})
    with pytest.raises(ValueError) as caught:
        get_processor("openai", {"requests_per_minute": 501})
    assert str(caught.value) == (
        "The openai processor's requests_per_minute may be at most 500 (its limit in "
        "BATCH_RATE_LIMITS); a batch may only lower it."
    )
