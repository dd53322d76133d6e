"""LogBatcher and BatchsvcLogHandler against a real server."""

import logging
import subprocess
import sys
import threading
import time

import httpx
import pytest
from batchsvc_client import BatchsvcLogHandler, Client, LogBatcher

from setuplogs.models import LogEntry
from tests.conftest import make_run
from tests.support.logs import messages
from tests.support.proxy import Proxy
from tests.support.waiting import wait_until
from traces.models import Run

pytestmark = pytest.mark.django_db(transaction=True)


class CountingTransport(httpx.HTTPTransport):
    """httpx's own transport, remembering the requests it sent."""

    def __init__(self):
        super().__init__()
        self.sent: list[tuple[str, str]] = []

    def handle_request(self, request):
        self.sent.append((request.method, request.url.path.rsplit("/", 1)[-1]))
        return super().handle_request(request)

    def count(self, endpoint: str | None = None) -> int:
        return sum(endpoint is None or path == endpoint for _, path in self.sent)


@pytest.fixture
def transport():
    return CountingTransport()


@pytest.fixture
def python_client(live_server, token, transport):
    with Client(live_server.url, token=token, transport=transport) as api_client:
        yield api_client


def test_100_lines_added_quickly_reach_the_server_in_at_most_10_requests_in_order(
    python_client, transport, run_id
):
    batcher = LogBatcher(python_client, run_id)
    sent = [f"line {n}" for n in range(100)]
    for message in sent:
        batcher.add("info", message)

    assert wait_until(lambda: len(messages(run_id)) == 100)
    assert messages(run_id) == sent
    assert transport.count() <= 10
    assert batcher.stats["flushes_by_size"] >= 1
    batcher.close()
    assert transport.count() <= 10


def test_25_lines_and_close_take_3_requests(python_client, transport, run_id):
    with LogBatcher(python_client, run_id) as batcher:
        for n in range(25):
            batcher.add("info", f"line {n}")

    assert transport.sent == [("POST", "setup_logs")] * 3
    assert messages(run_id) == [f"line {n}" for n in range(25)]
    assert batcher.stats["batches_sent"] == 3
    assert batcher.stats["lines_sent"] == 25


def test_a_line_added_alone_arrives_within_the_flush_interval_and_half_a_second(
    python_client, run_id
):
    batcher = LogBatcher(python_client, run_id, flush_interval=1.0)
    added = time.monotonic()
    batcher.add("warning", "alone")

    assert wait_until(lambda: messages(run_id) == ["alone"], timeout=1.5)
    assert time.monotonic() - added <= 1.5
    assert (batcher.stats["flushes_by_timer"], batcher.stats["flushes_by_size"]) == (1, 0)
    batcher.close()


def test_with_the_batch_endpoint_answering_404_every_line_arrives_one_by_one(
    python_client, transport, run_id, settings
):
    settings.ROOT_URLCONF = "tests.e2e.urls_without_batch_logs"
    with LogBatcher(python_client, run_id, max_batch_size=5) as batcher:
        for n in range(12):
            batcher.add("info", f"line {n}")

    assert messages(run_id) == [f"line {n}" for n in range(12)]
    # One try of the batch endpoint, then never again.
    assert transport.count("setup_logs") == 1
    assert transport.count("setup_log") == 12
    assert batcher.stats["individual_sends"] == 12
    assert batcher.stats["fallbacks"] == 1
    assert batcher.use_batch_endpoint is False


def test_a_batch_the_endpoint_refuses_goes_out_one_by_one_and_the_next_tries_it_again(
    python_client, transport, run_id, settings
):
    settings.LOGS_BATCH_MAX = 3  # the server takes fewer lines than we send
    with LogBatcher(python_client, run_id, max_batch_size=4) as batcher:
        for n in range(8):
            batcher.add("info", f"line {n}")

    assert messages(run_id) == [f"line {n}" for n in range(8)]
    assert transport.count("setup_logs") == 2
    assert batcher.stats["fallbacks"] == 2
    assert batcher.use_batch_endpoint is True


def test_with_the_server_down_for_a_while_nothing_is_lost_and_nothing_duplicated(
    live_server, token, run_id
):
    proxy = Proxy(live_server.url).start()
    client = Client(proxy.url, token=token)
    batcher = LogBatcher(client, run_id, max_batch_size=5, flush_interval=0.2)
    batcher.add("info", "before 0")
    assert wait_until(lambda: messages(run_id) == ["before 0"])

    proxy.stop()
    for n in range(23):
        batcher.add("info", f"during {n}")
    assert wait_until(
        lambda: batcher.stats["flushes_by_size"] + batcher.stats["flushes_by_timer"] > 2
    )
    assert messages(run_id) == ["before 0"]
    assert wait_until(lambda: batcher.buffered == 23)

    proxy.start()
    for n in range(3):
        batcher.add("info", f"after {n}")
    batcher.close()
    client.close()
    proxy.stop()

    expected = ["before 0", *[f"during {n}" for n in range(23)], *[f"after {n}" for n in range(3)]]
    assert messages(run_id) == expected
    assert batcher.stats["dropped"] == 0
    assert batcher.stats["lines_sent"] == 27


def test_a_batch_whose_answer_was_lost_is_sent_again_and_stored_once(live_server, token, run_id):
    proxy = Proxy(live_server.url).start()
    client = Client(proxy.url, token=token)
    batcher = LogBatcher(client, run_id, max_batch_size=5, flush_interval=0.2)
    proxy.lose_answers = True
    for n in range(5):
        batcher.add("info", f"line {n}")
    # The server stores the batch; the client hears nothing and keeps the lines.
    assert wait_until(lambda: len(messages(run_id)) == 5)
    assert wait_until(lambda: batcher.buffered == 5)

    proxy.lose_answers = False
    batcher.close()
    client.close()
    proxy.stop()

    assert messages(run_id) == [f"line {n}" for n in range(5)]
    assert LogEntry.objects.count() == 5


def test_past_max_buffer_the_oldest_lines_are_dropped_and_the_run_records_the_loss(
    live_server, token, run_id
):
    proxy = Proxy(live_server.url)  # not started: the server is unreachable
    client = Client(proxy.url, token=token)
    batcher = LogBatcher(client, run_id, max_batch_size=5, max_buffer=10)
    for n in range(14):
        batcher.add("info", f"line {n}")
    # A batch in flight is out of the buffer until its send fails and it comes back.
    assert wait_until(lambda: batcher.stats["dropped"] == 4 and batcher.buffered == 10)

    proxy.start()
    batcher.close()
    client.close()
    proxy.stop()

    entries = LogEntry.objects.filter(run__run_id=run_id)
    assert [(e.level, e.message) for e in entries] == [
        ("warning", "client dropped 4 lines"),
        *[("info", f"line {n}") for n in range(4, 14)],
    ]
    assert batcher.stats["dropped"] == 4


def test_in_one_by_one_mode_the_loss_is_recorded_too(live_server, token, run_id, settings):
    settings.ROOT_URLCONF = "tests.e2e.urls_without_batch_logs"
    proxy = Proxy(live_server.url)
    client = Client(proxy.url, token=token)
    batcher = LogBatcher(client, run_id, max_batch_size=2, max_buffer=3)
    for n in range(5):
        batcher.add("info", f"line {n}")
    # Until the sender has tried, a batch in flight may spare a line from the overflow.
    assert wait_until(lambda: batcher.stats["dropped"] == 2 and batcher.buffered == 3)

    proxy.start()
    batcher.close()
    client.close()
    proxy.stop()

    assert messages(run_id) == ["client dropped 2 lines", "line 2", "line 3", "line 4"]


def test_lines_for_a_run_not_stored_yet_wait_for_it_and_still_use_the_batch_endpoint(
    python_client, transport, api
):
    run = make_run()
    batcher = LogBatcher(python_client, run["run_id"], max_batch_size=3, flush_interval=0.1)
    for n in range(3):
        batcher.add("info", f"line {n}")
    assert wait_until(lambda: transport.count("setup_logs") >= 1)

    api.post("/api/v1/runs/", run, format="json")
    batcher.close()

    assert messages(run["run_id"]) == ["line 0", "line 1", "line 2"]
    assert transport.count("setup_log") == 0
    assert batcher.use_batch_endpoint is True


def test_lines_added_from_many_threads_are_all_stored_once_each_thread_in_order(
    python_client, run_id
):
    batcher = LogBatcher(python_client, run_id, max_batch_size=50)

    def work(thread):
        for n in range(200):
            batcher.add("info", f"{thread} {n}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batcher.close()

    stored = messages(run_id)
    assert len(stored) == len(set(stored)) == 1000
    for t in range(5):
        assert [m for m in stored if m.startswith(f"{t} ")] == [f"{t} {n}" for n in range(200)]


def test_close_is_idempotent_and_adding_after_it_is_an_error(python_client, transport, run_id):
    batcher = LogBatcher(python_client, run_id)
    batcher.add("error", "last words")
    batcher.close()
    batcher.close()
    assert messages(run_id) == ["last words"]
    assert transport.count() == 1
    with pytest.raises(RuntimeError):
        batcher.add("info", "too late")


def test_an_unknown_level_is_refused_when_added(python_client, run_id):
    with (
        LogBatcher(python_client, run_id) as batcher,
        pytest.raises(ValueError, match="level must"),
    ):
        batcher.add("loud", "hello")


def test_a_line_the_server_refuses_is_counted_and_the_others_are_stored(
    python_client, run_id, settings
):
    settings.LOG_MESSAGE_MAX = 10
    with LogBatcher(python_client, run_id) as batcher:
        batcher.add("info", "short")
        batcher.add("info", "far too long for the server")
        batcher.add("info", "short too")
    assert messages(run_id) == ["short", "short too"]
    assert (batcher.stats["lines_sent"], batcher.stats["rejected"]) == (2, 1)


def test_the_log_handler_sends_formatted_records_with_their_levels(python_client, run_id):
    handler = BatchsvcLogHandler(python_client, run_id, flush_interval=0.2)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    agent = logging.getLogger("tests.agent")
    agent.addHandler(handler)
    agent.setLevel(logging.DEBUG)
    try:
        agent.debug("checking out %s", "main")
        agent.info("building")
        agent.warning("slow disk")
        try:
            raise KeyError("config")
        except KeyError:
            agent.exception("build failed")
        agent.critical("giving up")
        agent.log(logging.INFO + 5, "a custom level")
    finally:
        agent.removeHandler(handler)
        handler.close()

    entries = list(LogEntry.objects.filter(run__run_id=run_id))
    assert [(e.level, e.message.splitlines()[0]) for e in entries] == [
        ("debug", "tests.agent: checking out main"),
        ("info", "tests.agent: building"),
        ("warning", "tests.agent: slow disk"),
        ("error", "tests.agent: build failed"),
        ("critical", "tests.agent: giving up"),
        ("info", "tests.agent: a custom level"),
    ]
    assert "KeyError: 'config'" in entries[3].message


def test_the_log_handler_on_the_root_logger_does_not_send_its_own_http_logs(
    python_client, transport, run_id
):
    handler = BatchsvcLogHandler(python_client, run_id, max_batch_size=2, flush_interval=0.1)
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.DEBUG)  # httpx logs every request at INFO
    root.addHandler(handler)
    try:
        logging.getLogger("tests.agent").info("one")
        logging.getLogger("tests.agent").info("two")
        assert wait_until(lambda: len(messages(run_id)) == 2)
        time.sleep(0.5)  # several flush intervals: nothing else may arrive
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
    assert messages(run_id) == ["one", "two"]
    assert transport.count() == 1


def test_a_run_is_read_back_in_order_with_the_client(python_client, run_id):
    with LogBatcher(python_client, run_id, max_batch_size=100) as batcher:
        for n in range(30):
            batcher.add("error" if n % 10 == 0 else "info", f"line {n}")
    lines = list(python_client.log_lines(run_id, page_size=7))
    assert [line["message"] for line in lines] == [f"line {n}" for n in range(30)]
    assert [line["seq"] for line in python_client.log_lines(run_id, after=26)] == [27, 28, 29, 30]
    errors = python_client.log_lines(run_id, level="error")
    assert [line["message"] for line in errors] == ["line 0", "line 10", "line 20"]
    assert Run.objects.count() == 1


def test_lines_still_buffered_when_the_program_exits_are_sent(live_server, token, run_id):
    script = (
        "import sys; from batchsvc_client import Client, LogBatcher; "
        "client = Client(sys.argv[1], token=sys.argv[2]); "
        "batcher = LogBatcher(client, sys.argv[3], flush_interval=60); "
        "batcher.add('info', 'said just before exit')"
    )
    subprocess.run(
        [sys.executable, "-c", script, live_server.url, token, run_id], check=True, timeout=60
    )
    assert messages(run_id) == ["said just before exit"]


def test_a_throttled_batch_stays_buffered_until_retry_after_and_is_not_split(
    python_client, transport, run_id, settings
):
    from django.core.cache import cache

    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"batch": "1/minute"},
    }
    batcher = LogBatcher(python_client, run_id, max_batch_size=2)
    for n in range(4):
        batcher.add("info", f"line {n}")
    assert wait_until(lambda: transport.count("setup_logs") == 2 and batcher.buffered == 2)
    time.sleep(1.0)  # twice the first backoff: only Retry-After (60 s) holds it back
    assert transport.count() == 2

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"batch": None}}
    batcher.close()
    assert messages(run_id) == [f"line {n}" for n in range(4)]
    assert (batcher.stats["fallbacks"], batcher.stats["individual_sends"]) == (0, 0)


def test_a_line_the_server_always_fails_is_dropped_in_its_place_and_the_lines_behind_it_arrive(
    live_server, token, run_id, settings
):
    settings.ROOT_URLCONF = "tests.e2e.urls_poisoned_log_line"
    with (
        Client(live_server.url, token=token, backoff=0.01) as client,
        LogBatcher(client, run_id, max_batch_size=3) as batcher,
    ):
        for message in ("before", "poison", "after 1", "after 2"):
            batcher.add("info", message)
        assert wait_until(lambda: len(messages(run_id)) == 4), (messages(run_id), batcher.stats)

    assert messages(run_id) == [
        "before",
        "client dropped a line the server failed to store 5 times",
        "after 1",
        "after 2",
    ]
    assert (batcher.stats["dropped"], batcher.stats["rejected"]) == (1, 0)


def test_a_message_with_lone_surrogates_is_sent_with_them_escaped(python_client, run_id):
    name = b"caf\xe9.txt".decode("utf-8", "surrogateescape")
    with LogBatcher(python_client, run_id) as batcher:
        batcher.add("info", "before")
        batcher.add("info", f"reading {name}")
        batcher.add("info", "after")

    assert messages(run_id) == ["before", "reading caf\\udce9.txt", "after"]
