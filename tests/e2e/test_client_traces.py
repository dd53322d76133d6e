"""TraceWriter against a real live server: batch, chunks, fallback, retries."""

import logging
import socket

import httpx
import pytest
from batchsvc_client import Client, TraceWriter

from traces.models import TraceFile

pytestmark = pytest.mark.django_db(transaction=True)

BATCH, SINGLE = "/api/v1/traces/write-batch", "/api/v1/traces/write"


class RecordingTransport(httpx.HTTPTransport):
    """A real HTTP transport that remembers the paths it sent requests to."""

    def __init__(self):
        super().__init__()
        self.paths = []

    def handle_request(self, request):
        self.paths.append(request.url.path)
        return super().handle_request(request)


@pytest.fixture
def transport():
    return RecordingTransport()


@pytest.fixture
def python_client(live_server, token, transport, alice_root):
    with Client(live_server.url, token=token, backoff=0.01, transport=transport) as api_client:
        yield api_client


def traces(n, prefix="t"):
    return [(f"content of {prefix}{i}", f"{prefix}{i}.txt") for i in range(n)]


def written(alice_root, directory="out"):
    return sorted(p.name for p in (alice_root / directory).iterdir())


def test_two_files_go_in_one_batch_request(python_client, transport, alice_root):
    writer = TraceWriter(python_client, "out")
    assert writer.write_formatted_traces([('{"a": 1}', "t.json"), ("=== t ===", "t.txt")])
    assert transport.paths == [BATCH]
    assert written(alice_root) == ["t.json", "t.txt"]
    assert (alice_root / "out" / "t.json").read_text() == '{"a": 1}'


def test_batches_are_chunked_by_max_batch_size(python_client, transport, alice_root):
    assert TraceWriter(python_client, "out", max_batch_size=2).write_formatted_traces(traces(5))
    assert transport.paths == [BATCH, BATCH, SINGLE]  # 2 + 2 + a last single file
    assert len(written(alice_root)) == 5


def test_one_file_uses_the_single_endpoint(python_client, transport, alice_root):
    assert TraceWriter(python_client, "out").write_formatted_traces(traces(1))
    assert transport.paths == [SINGLE]


def test_the_batch_endpoint_can_be_switched_off(python_client, transport, alice_root):
    writer = TraceWriter(python_client, "out", use_batch_endpoint=False)
    assert writer.write_formatted_traces(traces(3))
    assert transport.paths == [SINGLE] * 3


def test_the_files_are_linked_to_the_run(python_client, alice_root, api, run_factory):
    run = run_factory()
    api.post("/api/v1/runs/batch", {"runs": [run]}, format="json")
    TraceWriter(python_client, "out", run_id=run["run_id"]).write_formatted_traces(traces(2))
    assert set(TraceFile.objects.values_list("run_id", flat=True)) == {run["run_id"]}


def test_a_server_without_the_batch_endpoint_gets_single_writes_from_then_on(
    python_client, transport, alice_root, settings, caplog
):
    settings.ROOT_URLCONF = "tests.e2e.urls_old_server"
    writer = TraceWriter(python_client, "out")
    with caplog.at_level(logging.INFO, logger="batchsvc_client.traces"):
        assert writer.write_formatted_traces(traces(2, "a"))
        assert writer.write_formatted_traces(traces(2, "b"))
    assert transport.paths == [BATCH, SINGLE, SINGLE, SINGLE, SINGLE]  # one 404, no retry
    assert written(alice_root) == ["a0.txt", "a1.txt", "b0.txt", "b1.txt"]
    assert "no batch write endpoint" in caplog.text


def test_a_failing_batch_is_retried_twice_then_falls_back_to_single_writes(
    python_client, transport, alice_root, settings, caplog
):
    settings.ROOT_URLCONF = "tests.e2e.urls_broken_batch"
    with caplog.at_level(logging.WARNING):
        assert TraceWriter(python_client, "out").write_formatted_traces(traces(2))
    assert transport.paths == [BATCH] * 3 + [SINGLE] * 2
    assert written(alice_root) == ["t0.txt", "t1.txt"]
    assert "writing 2 files one by one" in caplog.text


def test_a_batch_that_times_out_is_retried_twice_then_falls_back(
    python_client, transport, alice_root, settings, caplog
):
    settings.ROOT_URLCONF = "tests.e2e.urls_slow_batch"
    writer = TraceWriter(python_client, "out", batch_timeout=0.2)
    with caplog.at_level(logging.WARNING):
        assert writer.write_formatted_traces(traces(2))
    assert transport.paths == [BATCH] * 3 + [SINGLE] * 2
    assert written(alice_root) == ["t0.txt", "t1.txt"]
    assert caplog.text.count("write-batch failed (timed out); retrying") == 2


def test_without_fallback_a_failing_batch_returns_false_and_writes_nothing(
    python_client, transport, trace_root, settings
):
    settings.ROOT_URLCONF = "tests.e2e.urls_broken_batch"
    writer = TraceWriter(python_client, "out", fallback_to_individual=False)
    assert writer.write_formatted_traces(traces(2)) is False
    assert transport.paths == [BATCH] * 3
    assert not trace_root.exists()


def test_a_file_the_server_refuses_is_logged_and_the_others_are_written(
    python_client, alice_root, caplog
):
    files = [("ok", "good.txt"), ("bad", "../evil.txt"), ("ok", "fine.txt")]
    with caplog.at_level(logging.ERROR, logger="batchsvc_client.traces"):
        assert TraceWriter(python_client, "out").write_formatted_traces(files) is False
    assert written(alice_root) == ["fine.txt", "good.txt"]
    assert "Trace file ../evil.txt not written: file_name must be a name" in caplog.text


def test_a_refused_single_write_is_logged(python_client, alice_root, caplog):
    with caplog.at_level(logging.ERROR, logger="batchsvc_client.traces"):
        assert TraceWriter(python_client, "/abs").write_formatted_traces(traces(1)) is False
    assert "HTTP 400 Trace file not written: output_directory must be relative" in caplog.text


def test_nothing_to_write_is_false(python_client, transport):
    assert TraceWriter(python_client, "out").write_formatted_traces([]) is False
    assert transport.paths == []


def test_a_server_unreachable_past_the_deadline_gets_no_single_writes(caplog, alice_root):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = RecordingTransport()
    url = f"http://127.0.0.1:{port}"
    with Client(url, "t", backoff=0.001, retry_deadline=0.3, transport=transport) as client:
        assert TraceWriter(client, "out").write_formatted_traces(traces(4)) is False
    # Retried until the deadline; then one file at a time would only fail the same way.
    assert len(transport.paths) > 3
    assert set(transport.paths) == {BATCH}
    assert "Trace files not written: the server is unavailable" in caplog.text
