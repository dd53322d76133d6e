"""The client's compressed request bodies, as a front server (tests/e2e/front.py)
receives them: it records the bytes that came, decodes them and forwards them to
the live server, which stores what they say."""

import json

import pytest
from batchsvc_client import Client, TraceWriter

from tests.conftest import make_run
from traces.models import Run, TraceFile

pytestmark = pytest.mark.django_db(transaction=True)

THRESHOLD = 16 * 1024


def encoded(body) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def test_a_json_body_above_the_threshold_is_gzipped_and_one_below_is_not(front, token):
    many, one = [make_run() for _ in range(100)], [make_run()]
    with Client(front.url, token=token, gzip_threshold=THRESHOLD) as client:
        client.upload_runs(many)
        client.upload_runs(one)

    big, small = front.seen
    assert big.encoding == "gzip"
    assert big.size < len(big.body) / 3
    assert big.json() == {"runs": many}
    assert small.encoding is None
    assert small.size == len(small.body) and small.json() == {"runs": one}
    assert Run.objects.count() == 101


def test_a_body_of_exactly_the_threshold_is_sent_as_it_is(front, token):
    runs = [make_run()]
    size = len(encoded({"runs": runs}))
    for threshold in (size, size - 1):
        with Client(front.url, token=token, gzip_threshold=threshold) as client:
            client.upload_runs(runs)
    assert [seen.encoding for seen in front.seen] == [None, "gzip"]
    assert [seen.json() for seen in front.seen] == [{"runs": runs}] * 2


def test_by_default_a_body_over_16_kib_is_gzipped_and_none_turns_it_off(front, token):
    runs = [make_run() for _ in range(100)]
    with Client(front.url, token=token) as client:
        client.upload_runs(runs)
    with Client(front.url, token=token, gzip_threshold=None) as client:
        client.upload_runs(runs)
    assert [seen.encoding for seen in front.seen] == ["gzip", None]
    assert front.seen[1].size > THRESHOLD


def test_every_request_accepts_gzip_answers(front, token):
    with Client(front.url, token=token) as client:
        client.upload_runs([make_run()])
        list(client.log_lines(Run.objects.get().run_id))
    assert all("gzip" in seen.headers["accept-encoding"] for seen in front.seen)


def test_trace_files_go_gzipped_and_a_retry_sends_the_same_bytes(front, token, alice_root):
    files = [("x" * 10_000 + str(n), f"t{n}.txt") for n in range(5)]
    front.outage([("unavailable", 0.2)])
    with Client(front.url, token=token, gzip_threshold=THRESHOLD, backoff=0.05) as client:
        assert TraceWriter(client, "out").write_formatted_traces(files)

    assert front.statuses()[0] == 503 and front.statuses()[-1] == 200
    assert {seen.encoding for seen in front.seen} == {"gzip"}
    assert len({(seen.size, seen.body) for seen in front.seen}) == 1
    assert TraceFile.objects.count() == 5
    assert (alice_root / "out" / "t4.txt").read_text() == "x" * 10_000 + "4"
