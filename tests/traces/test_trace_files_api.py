"""POST /traces/write and /traces/write-batch against a real storage root."""

import hashlib
import logging
import threading
from pathlib import Path

import msgspec
import pytest
from django.core.files.storage import FileSystemStorage
from django.db import connection

from tests.support.hostile import HOSTILE_DIRECTORIES, HOSTILE_FILE_NAMES
from traces.models import TraceFile
from traces.schemas import TraceBatchResult, TraceWriteResult

pytestmark = pytest.mark.django_db

WRITE = "/api/v1/traces/write"
BATCH = "/api/v1/traces/write-batch"


def trace(name="trace.json", data='{"action": "test"}', directory="nightly", **extra):
    return {"trace_data": data, "file_name": name, "output_directory": directory, **extra}


def write_batch(api, files):
    return api.post(BATCH, {"files": files}, format="json")


def tree(path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_write_stores_one_file_and_answers_201_with_its_row(api, alice_root):
    response = api.post(WRITE, trace("a.json", '{"x": 1}', "nightly/2026-01-28"), format="json")
    assert response.status_code == 201
    body = msgspec.json.decode(response.content, type=TraceWriteResult)
    row = TraceFile.objects.get()
    assert body == TraceWriteResult(
        success=True,
        id=row.pk,
        file_name="a.json",
        file_path="nightly/2026-01-28/a.json",
        size=8,
        bytes_written=8,
        sha256=hashlib.sha256(b'{"x": 1}').hexdigest(),
    )
    assert (alice_root / "nightly" / "2026-01-28" / "a.json").read_bytes() == b'{"x": 1}'
    assert (row.path, row.size, row.sha256) == (body.file_path, 8, body.sha256)


def test_write_without_output_directory_goes_to_the_root(api, alice_root):
    response = api.post(WRITE, {"trace_data": "hi", "file_name": "t.txt"}, format="json")
    assert response.json()["file_path"] == "t.txt"
    assert (alice_root / "t.txt").read_text() == "hi"


def test_a_null_output_directory_and_an_empty_run_id_mean_the_root_and_no_run(api, alice_root):
    body = {"trace_data": "hi", "file_name": "t.txt", "output_directory": None, "run_id": ""}
    response = api.post(WRITE, body, format="json")
    assert response.status_code == 201
    assert (alice_root / "t.txt").read_text() == "hi"
    assert TraceFile.objects.get().run is None


def test_write_counts_bytes_not_characters(api, alice_root):
    response = api.post(WRITE, trace("u.txt", "héllo ✓"), format="json")
    assert response.json()["bytes_written"] == len("héllo ✓".encode()) == 10


def test_write_links_the_file_to_its_run(api, alice_root, run_factory):
    run = run_factory()
    api.post("/api/v1/runs/batch", {"runs": [run]}, format="json")
    response = api.post(WRITE, trace(run_id=run["run_id"]), format="json")
    assert response.status_code == 201
    assert TraceFile.objects.get().run.run_id == run["run_id"]


def test_a_trace_written_before_its_run_links_up_when_the_run_arrives(
    api, admin_client, alice_root, run_factory
):
    run = run_factory(run_id="uploaded-later")
    response = write_batch(api, [trace("a.json", run_id="uploaded-later")])
    assert response.json()["results"][0]["success"] is True
    assert api.get("/api/v1/traces/?run_id=uploaded-later").json()["results"][0]["path"] == (
        "nightly/a.json"
    )
    page = admin_client.get("/admin/traces/tracefile/").content.decode()
    assert "uploaded-later (not stored yet)" in page
    file = TraceFile.objects.get()
    page = admin_client.get(f"/admin/traces/tracefile/{file.pk}/change/").content.decode()
    assert "uploaded-later (not stored yet)" in page

    api.post("/api/v1/runs/batch", {"runs": [run]}, format="json")

    assert TraceFile.objects.get().run.event_id.hex == run["event_id"].replace("-", "")
    page = admin_client.get(f"/admin/traces/tracefile/{file.pk}/change/").content.decode()
    assert "not stored yet" not in page
    assert "/admin/traces/run/" in page


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"file_name": "a.txt"}, "trace_data is required"),
        ({"trace_data": "x"}, "file_name is required"),
        ({"trace_data": "", "file_name": "a.txt"}, "trace_data: Expected `str` of length >= 1"),
        ({"trace_data": 5, "file_name": "a.txt"}, "trace_data: Expected `str`, got `int`"),
        (trace("../a.txt"), "file_name must be a name, not a path (no /)"),
        (
            {"traceData": "x", "fileName": "a.txt"},
            "unknown key 'traceData' (did you mean trace_data?)",
        ),
        (
            {**trace(), "colour": "blue"},
            "unknown key 'colour'; the keys are: trace_data, file_name, output_directory, run_id",
        ),
    ],
)
def test_write_with_a_bad_file_is_a_400_saying_why(api, alice_root, body, error):
    response = api.post(WRITE, body, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == f"Trace file not written: {error}."
    assert TraceFile.objects.count() == 0


def test_camel_case_keys_fail_their_file_in_a_batch_saying_the_key_meant(api, alice_root):
    files = [{"traceData": "x", "fileName": "a.txt", "outputDirectory": "n"}, trace("b.txt")]
    results = write_batch(api, files).json()["results"]
    assert results[0]["error"] == "unknown key 'traceData' (did you mean trace_data?)"
    assert [result["success"] for result in results] == [False, True]


def test_write_batch_writes_every_file_and_reports_each(api, alice_root):
    files = [trace("t.json", '{"a": 1}'), trace("t.txt", "=== Trace ===\n")]
    response = write_batch(api, files)
    assert response.status_code == 200
    body = msgspec.json.decode(response.content, type=TraceBatchResult)
    assert body.success is True
    assert (body.summary.total_files, body.summary.successful, body.summary.failed) == (2, 2, 0)
    assert body.summary.total_bytes == 8 + 14
    assert [r.index for r in body.results] == [0, 1]
    assert [r.file_path for r in body.results] == ["nightly/t.json", "nightly/t.txt"]
    assert {r.id for r in body.results} == set(TraceFile.objects.values_list("pk", flat=True))
    assert (alice_root / "nightly" / "t.txt").read_text() == "=== Trace ===\n"


def test_a_bad_file_fails_alone_and_the_others_are_written(api, alice_root):
    files = [
        trace("good-1.txt"),
        {"file_name": "no-data.txt", "output_directory": "nightly"},
        trace("evil.txt", directory="../../etc"),
        {"trace_data": "x"},
        trace("good-2.txt"),
    ]
    body = write_batch(api, files).json()
    assert [r["success"] for r in body["results"]] == [True, False, False, False, True]
    assert body["success"] is True
    assert (body["summary"]["successful"], body["summary"]["failed"]) == (2, 3)
    failed = body["results"][1]
    assert failed == {
        "index": 1,
        "id": None,
        "file_name": "no-data.txt",
        "success": False,
        "file_path": None,
        "size": None,
        "bytes_written": None,
        "sha256": None,
        "error": "trace_data is required",
    }
    assert body["results"][2]["error"] == "output_directory must not be . or .. in any spelling"
    assert body["results"][3]["file_name"] is None
    assert tree(alice_root) == ["nightly", "nightly/good-1.txt", "nightly/good-2.txt"]
    assert TraceFile.objects.count() == 2


def test_a_batch_where_every_file_fails_is_still_200_with_success_false(api, alice_root):
    body = write_batch(api, [{"trace_data": "x"}]).json()
    assert body["success"] is False
    assert body["summary"]["failed"] == 1


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ({}, "files array is required."),
        ({"files": []}, "files array is required and must hold at least one item."),
        ({"files": "x"}, "files array is required."),
        ([trace()], "The request body must be a JSON object with a files array."),
    ],
)
def test_a_missing_or_empty_files_array_is_a_400_with_details(api, alice_root, payload, error):
    response = api.post(BATCH, payload, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == error
    assert "non-empty array" in body["details"]["files"]


def test_more_files_than_the_limit_is_a_400_naming_it(api, trace_root, settings):
    settings.TRACES_BATCH_MAX = 2
    response = write_batch(api, [trace(f"{i}.txt") for i in range(3)])
    assert response.status_code == 400
    assert response.json()["error"] == "files array holds 3 items; the limit is 2 per request."
    assert not trace_root.exists()


def test_a_file_over_the_size_limit_fails_alone(api, alice_root, settings):
    settings.TRACE_MAX_BYTES = 10
    body = write_batch(api, [trace("big.txt", "é" * 6), trace("small.txt", "12345")]).json()
    assert body["results"][0]["error"] == "trace_data is larger than the limit of 10 bytes"
    assert body["results"][1]["success"] is True


def test_a_body_over_the_trace_request_limit_is_a_413(api, alice_root, settings):
    settings.TRACES_MAX_REQUEST_BYTES = 100
    response = write_batch(api, [trace("a.txt", "x" * 200)])
    assert response.status_code == 413
    assert response.json()["error"] == "Request body is larger than the limit of 100 bytes."


def test_rewriting_a_path_replaces_the_file_and_updates_its_row(api, alice_root):
    first = write_batch(api, [trace("t.txt", "version one, long")]).json()["results"][0]
    row = TraceFile.objects.get()
    second = write_batch(api, [trace("t.txt", "v2")]).json()["results"][0]
    assert second["id"] == first["id"]
    assert (alice_root / "nightly" / "t.txt").read_text() == "v2"
    assert tree(alice_root) == ["nightly", "nightly/t.txt"]
    updated = TraceFile.objects.get()
    assert (updated.size, updated.sha256) == (2, hashlib.sha256(b"v2").hexdigest())
    assert updated.created_at == row.created_at
    assert updated.updated_at > row.updated_at


def test_a_path_repeated_in_one_batch_fails_the_repeat(api, alice_root):
    body = write_batch(api, [trace("t.txt", "one"), trace("t.txt", "two")]).json()
    assert body["results"][1]["error"] == "file 0 of this request writes the same path"
    assert (alice_root / "nightly" / "t.txt").read_text() == "one"


def test_the_files_of_a_batch_are_written_in_parallel(api, settings):
    """Each save waits for the other at a barrier: done one after the other,
    the first would give up waiting and fail."""
    BarrierStorage.barrier = threading.Barrier(3, timeout=10)
    settings.STORAGES = {**settings.STORAGES, "traces": {"BACKEND": f"{__name__}.BarrierStorage"}}
    body = write_batch(api, [trace(f"{i}.txt") for i in range(3)]).json()
    assert body["summary"]["successful"] == 3, body


class BarrierStorage(FileSystemStorage):
    barrier: threading.Barrier

    def __init__(self):
        import tempfile

        super().__init__(location=tempfile.mkdtemp(), allow_overwrite=True)

    def _save(self, name, content):
        self.barrier.wait()
        return super()._save(name, content)


def test_an_os_error_fails_that_file_only(api, alice_root):
    (alice_root / "nightly" / "taken").mkdir(parents=True)
    body = write_batch(api, [trace("taken"), trace("free.txt")]).json()
    assert body["results"][0]["error"] == "the path names a directory, not a file"
    assert body["results"][1]["success"] is True


@pytest.mark.parametrize("count", [1, 20])
def test_the_batch_writes_rows_with_a_fixed_number_of_queries(
    api, alice_root, run_factory, django_assert_num_queries, count
):
    run = run_factory()
    api.post("/api/v1/runs/batch", {"runs": [run]}, format="json")
    files = [trace(f"{i}.txt", run_id=run["run_id"]) for i in range(count)]
    # token, savepoint (inside the test's transaction), [PostgreSQL: path
    # locks], upsert, release
    expected = 4 + (connection.vendor == "postgresql")
    with django_assert_num_queries(expected):
        response = write_batch(api, files)
    assert response.json()["summary"]["successful"] == count


def test_one_structured_log_line_per_batch(api, alice_root, caplog):
    with caplog.at_level(logging.INFO, logger="traces.files"):
        write_batch(api, [trace("a.txt", "12345"), trace("../b")])
    [record] = [r for r in caplog.records if r.name == "traces.files"]
    assert record.getMessage().startswith(
        "trace files written: total=2 successful=1 failed=1 bytes=5 ms="
    )
    assert record.trace_batch["total_files"] == 2


def test_the_endpoints_need_authentication(anonymous, trace_root):
    assert anonymous.post(WRITE, trace(), format="json").status_code == 401
    assert anonymous.post(BATCH, {"files": [trace()]}, format="json").status_code == 401
    assert not trace_root.exists()


# Hostile paths: nothing may appear anywhere but under the root. ---------------


@pytest.fixture
def surroundings(alice_root, tmp_path):
    """A root with links pointing out of it, and the places they point to."""
    outside = tmp_path / "outside"
    outside.mkdir()
    alice_root.mkdir(parents=True)
    (alice_root / "out").symlink_to(outside, target_is_directory=True)
    (alice_root / "tmp").symlink_to("/tmp", target_is_directory=True)
    (alice_root / "sub").mkdir()
    (alice_root / "sub" / "up").symlink_to("../..", target_is_directory=True)
    return outside


HOSTILE_VIA_LINKS = [
    ("out", "escape.txt"),
    ("out/deeper", "escape.txt"),
    ("tmp", "escape.txt"),
    ("sub/up", "escape.txt"),
    ("sub/up/outside", "escape.txt"),
]


def test_a_broad_list_of_hostile_paths_writes_nothing_outside_the_root(
    api, tmp_path, alice_root, surroundings
):
    marker = f"pwned-{tmp_path.name}"
    files = [trace(marker, directory=directory) for directory in HOSTILE_DIRECTORIES]
    files += [trace(name, directory="ok") for name in HOSTILE_FILE_NAMES]
    files += [trace(name, directory=directory) for directory, name in HOSTILE_VIA_LINKS]
    files += [trace(marker, directory=f"/tmp/{marker}"), trace(marker, directory="/tmp")]
    before = tree(tmp_path)
    in_tmp = {p.name for p in Path("/tmp").iterdir()}

    for start in range(0, len(files), 50):
        body = write_batch(api, files[start : start + 50]).json()
        assert body["summary"]["successful"] == 0, [r for r in body["results"] if r["success"]]

    assert tree(tmp_path) == before  # the root, its links and the outside: unchanged
    assert tree(surroundings) == []
    # /tmp is shared with other processes: look for our names among its new entries.
    new_in_tmp = {p.name for p in Path("/tmp").iterdir()} - in_tmp
    assert [n for n in new_in_tmp if n.startswith(marker) or "escape" in n] == []
    assert TraceFile.objects.count() == 0


def test_hostile_file_names_are_refused_by_the_single_endpoint_too(api, alice_root, surroundings):
    for directory, name in HOSTILE_VIA_LINKS:
        response = api.post(WRITE, trace(name, directory=directory), format="json")
        assert response.status_code == 400
        assert "symbolic link" in response.json()["error"]
    assert tree(surroundings) == []


def test_a_file_that_fails_when_published_reports_no_size_or_digest(api, alice_root):
    files = [
        {"trace_data": "x", "file_name": "a"},
        {"trace_data": "y", "file_name": "b", "output_directory": "a"},
    ]
    results = api.post("/api/v1/traces/write-batch", {"files": files}, format="json").json()
    failed = [result for result in results["results"] if not result["success"]]
    assert failed, results
    for result in failed:
        assert (result["size"], result["bytes_written"], result.get("sha256")) == (None, None, None)


# Owners: each writes in a namespace of its own.


def test_two_owners_writing_one_path_get_two_files_that_never_meet(api, bob, alice, trace_root):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    bob_api = APIClient()
    bob_api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=bob).key}")
    mine = api.post(WRITE, trace(data="alice's"), format="json").json()
    theirs = write_batch(bob_api, [trace(data="bob's")]).json()["results"][0]
    assert mine["file_path"] == theirs["file_path"] == "nightly/trace.json"
    assert tree(trace_root) == [
        "owners",
        f"owners/{alice.pk}",
        f"owners/{alice.pk}/nightly",
        f"owners/{alice.pk}/nightly/trace.json",
        f"owners/{bob.pk}",
        f"owners/{bob.pk}/nightly",
        f"owners/{bob.pk}/nightly/trace.json",
    ]
    assert (trace_root / "owners" / str(bob.pk) / "nightly" / "trace.json").read_text() == "bob's"
    rows = TraceFile.objects.order_by("owner__username")
    assert [(row.owner.username, row.path) for row in rows] == [
        ("alice", "nightly/trace.json"),
        ("bob", "nightly/trace.json"),
    ]


def test_a_link_in_place_of_an_owners_namespace_is_not_followed(api, alice, trace_root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (trace_root / "owners").mkdir(parents=True)
    (trace_root / "owners" / str(alice.pk)).symlink_to(outside, target_is_directory=True)
    response = api.post(WRITE, trace(), format="json")
    assert response.status_code == 400
    assert "symbolic link" in response.json()["error"]
    assert tree(outside) == []
