import gzip
import json
import tracemalloc
import zlib

import pytest

from setuplogs.models import LogEntry
from tests.setuplogs.conftest import batch_url, line
from traces.models import Run, TraceFile

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/runs/batch"


def post_gzip(api, url, body: bytes, encoding="gzip"):
    return api.generic(
        "POST", url, body, content_type="application/json", HTTP_CONTENT_ENCODING=encoding
    )


def gzipped(data) -> bytes:
    return gzip.compress(json.dumps(data).encode())


def bomb(inflated: int) -> bytes:
    """One gzip member that inflates to ``inflated`` zero bytes, built a chunk at a time."""
    deflate = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    chunk = bytes(1024 * 1024)
    parts = [deflate.compress(chunk) for _ in range(inflated // len(chunk))]
    return b"".join([*parts, deflate.flush()])


def test_a_gzipped_runs_batch_is_stored(api, run_factory):
    runs = [run_factory() for _ in range(3)]
    response = post_gzip(api, RUNS, gzipped({"runs": runs}))
    assert response.status_code == 201, response.content
    assert response.json()["created"] == 3
    assert Run.objects.count() == 3


def test_gzipped_log_lines_are_appended(api, run):
    body = gzipped({"logs": [line("one"), line("two")]})
    response = post_gzip(api, batch_url(run), body, encoding="x-gzip")
    assert response.json()["logs_added"] == 2
    assert LogEntry.objects.filter(run=run).count() == 2


def test_gzipped_trace_files_are_written(api, alice_root):
    files = [{"trace_data": "hello", "file_name": "a.txt", "output_directory": "gz"}]
    response = post_gzip(api, "/api/v1/traces/write-batch", gzipped({"files": files}))
    assert response.json()["summary"]["successful"] == 1
    assert (alice_root / "gz" / "a.txt").read_text() == "hello"


def test_several_gzip_members_are_one_body(api, run_factory):
    text = json.dumps({"runs": [run_factory(), run_factory()]}).encode()
    body = gzip.compress(text[:100]) + gzip.compress(text[100:])
    assert post_gzip(api, RUNS, body).status_code == 201
    assert Run.objects.count() == 2


def test_a_gzip_bomb_is_a_413_that_inflates_no_more_than_the_limit(api, settings):
    settings.MAX_REQUEST_BYTES = 1024 * 1024
    body = bomb(256 * 1024 * 1024)
    assert len(body) < settings.MAX_REQUEST_BYTES
    tracemalloc.start()
    try:
        response = post_gzip(api, RUNS, body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    assert response.json()["error"] == (
        "Request body is larger than the limit of 1048576 bytes once decompressed."
    )
    # Inflating all of it would take 256 MiB; the limit and a few copies of it is all.
    assert peak < 8 * settings.MAX_REQUEST_BYTES
    assert Run.objects.count() == 0


def test_a_decompressed_body_over_a_per_endpoint_limit_is_a_413(api, settings, trace_root):
    settings.TRACES_MAX_REQUEST_BYTES = 1000
    files = [{"trace_data": "x" * 5000, "file_name": "big.txt"}]
    response = post_gzip(api, "/api/v1/traces/write-batch", gzipped({"files": files}))
    assert response.status_code == 413
    assert "1000 bytes once decompressed" in response.json()["error"]
    assert TraceFile.objects.count() == 0


def test_an_unknown_content_encoding_is_a_415(api, run_factory):
    response = post_gzip(api, RUNS, b"anything", encoding="br")
    assert response.status_code == 415
    assert response.json()["error"] == (
        "Content-Encoding 'br' is not supported; send the body as it is or compressed with gzip."
    )
    assert response.json()["request_id"] == response["X-Request-ID"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not gzip at all", "Request body is not valid gzip."),
        (gzip.compress(b'{"runs": []}')[:-6], "Request body is not valid gzip: it ends too early."),
    ],
    ids=["garbage", "truncated"],
)
def test_a_body_that_is_not_gzip_is_a_400(api, body, error):
    response = post_gzip(api, RUNS, body)
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_large_json_answers_are_gzipped_for_clients_that_accept_it(api, run_factory):
    api.post(RUNS, {"runs": [run_factory() for _ in range(20)]}, format="json")
    plain = api.get("/api/v1/runs/")
    compressed = api.get("/api/v1/runs/", HTTP_ACCEPT_ENCODING="gzip")
    assert "Content-Encoding" not in plain
    assert compressed["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(compressed.content)) == plain.json()
    assert len(compressed.content) < len(plain.content) / 2
    assert "Accept-Encoding" in compressed["Vary"]


def test_gzipped_answers_carry_a_random_length_file_name_against_breach(api, run_factory):
    api.post(RUNS, {"runs": [run_factory() for _ in range(20)]}, format="json")
    headers = set()
    for _ in range(10):
        body = api.get("/api/v1/runs/", HTTP_ACCEPT_ENCODING="gzip").content
        assert body[3] & gzip.FNAME
        headers.add(body[10 : body.index(b"\x00", 10)])
    assert len(headers) > 1


def test_a_small_answer_is_not_compressed(api):
    response = api.get("/api/v1/runs/?page_size=1", HTTP_ACCEPT_ENCODING="gzip")
    assert "Content-Encoding" not in response
