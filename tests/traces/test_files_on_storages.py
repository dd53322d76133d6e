"""Trace files and OpenAI-compatible files on each storage FILES_STORAGE_URL can
choose: a local folder, and S3 (moto's S3-compatible server, started once for the
session). Only the API and what the storage holds are looked at, so every test
here proves the same promise on both."""

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from openai_api.models import File
from traces.models import TraceFile

pytestmark = pytest.mark.django_db


def trace(name="t.json", data='{"step": 1}', directory="nightly", **extra) -> dict:
    return {"trace_data": data, "file_name": name, "output_directory": directory, **extra}


def write(api, **file):
    return api.post("/api/v1/traces/write", trace(**file), format="json")


def write_batch(api, files):
    return api.post("/api/v1/traces/write-batch", {"files": files}, format="json").json()


def content(api, pk) -> bytes:
    return b"".join(api.get(f"/api/v1/traces/{pk}/content").streaming_content)


def sha256(data: str | bytes) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def test_a_written_file_is_stored_in_its_owners_namespace_and_read_back(api, alice, files_storage):
    response = write(api, data='{"a": "é"}')

    assert response.status_code == 201, response.json()
    body = response.json()
    name = f"owners/{alice.pk}/nightly/t.json"
    assert files_storage.names() == [name]
    assert files_storage.read(name) == '{"a": "é"}'.encode()
    assert body["sha256"] == files_storage.sha256(name) == sha256('{"a": "é"}')
    assert content(api, body["id"]) == '{"a": "é"}'.encode()


def test_a_batch_writes_every_file_and_leaves_nothing_but_them(api, alice, files_storage):
    files = [trace(f"{n}.txt", f"file {n}", directory=f"d{n % 2}") for n in range(6)]

    body = write_batch(api, files)

    assert body["summary"]["successful"] == 6, body
    assert files_storage.names() == sorted(f"owners/{alice.pk}/d{n % 2}/{n}.txt" for n in range(6))
    for result in body["results"]:
        assert content(api, result["id"]).decode() == f"file {result['index']}"
        assert result["sha256"] == sha256(f"file {result['index']}")


def test_rewriting_a_path_replaces_the_file_and_its_row(api, alice, files_storage):
    first = write(api, data="one").json()
    second = write(api, data="two, longer").json()

    assert second["id"] == first["id"]
    row = TraceFile.objects.get()
    assert (row.size, row.sha256) == (len("two, longer"), sha256("two, longer"))
    assert content(api, row.pk) == b"two, longer"
    assert files_storage.names() == [row.storage_name]
    assert files_storage.sha256(row.storage_name) == row.sha256


def test_two_owners_writing_one_path_get_two_files(api, alice, bob, files_storage):
    bobs = client_for(bob)
    write(api, data="alice's")
    write(bobs, data="bob's")

    assert files_storage.read(f"owners/{alice.pk}/nightly/t.json") == b"alice's"
    assert files_storage.read(f"owners/{bob.pk}/nightly/t.json") == b"bob's"


def client_for(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.mark.parametrize(
    "directory", ["../escape", "/absolute", "a/../../b", "nightly/\x00", "C:/x"]
)
def test_a_path_out_of_the_namespace_is_refused_and_nothing_is_stored(
    api, files_storage, directory
):
    response = write(api, directory=directory)

    assert response.status_code == 400
    assert files_storage.names() == []


def test_a_file_the_storage_refuses_fails_alone_in_its_batch(api, alice, files_storage):
    files_storage.refuse(f"owners/{alice.pk}/denied/refused.txt")
    files = [trace("a.txt", "a"), trace("refused.txt", "r", directory="denied"), trace("b.txt")]

    body = write_batch(api, files)

    refused = body["results"][1]
    assert refused["success"] is False
    assert refused["error"]
    assert (refused["size"], refused["sha256"], refused["id"]) == (None, None, None)
    assert [r["success"] for r in body["results"]] == [True, False, True]
    assert sorted(TraceFile.objects.values_list("path", flat=True)) == [
        "nightly/a.txt",
        "nightly/b.txt",
    ]
    stored = [name for name in files_storage.names() if not name.startswith("owners/")]
    assert stored == [], "no staging object or temporary file is left behind"


@pytest.mark.django_db(transaction=True)
def test_concurrent_rewrites_of_one_path_leave_a_file_that_matches_its_row(
    live_server, alice, files_storage
):
    token = Token.objects.create(user=alice).key
    versions = [f"version {n} " * (n + 1) for n in range(12)]

    def send(data):
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            batch = {"files": [trace("same.txt", data), trace(f"{sha256(data)}.txt", data)]}
            return http.post(
                "/api/v1/traces/write-batch",
                json=batch,
                headers={"Authorization": f"Token {token}"},
            )

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(send, versions))

    assert [answer.status_code for answer in answers] == [200] * len(versions)
    row = TraceFile.objects.get(path="nightly/same.txt")
    stored = files_storage.read(row.storage_name)
    assert stored.decode() in versions
    assert (row.size, row.sha256) == (len(stored), sha256(stored))
    assert files_storage.sha256(row.storage_name) == row.sha256
    assert len(files_storage.names()) == 1 + len(versions)


# OpenAI-compatible files go through the same storage.


@pytest.mark.django_db(transaction=True)
def test_an_openai_file_is_stored_read_back_and_deleted_through_the_storage(
    live_server, alice, files_storage
):
    from tests.support.openai_sdk import sdk_client

    sdk = sdk_client(live_server, Token.objects.create(user=alice).key)
    data = b'{"custom_id": "1", "method": "POST", "url": "/v1/chat/completions", "body": {}}\n'

    created = sdk.files.create(file=("q.jsonl", io.BytesIO(data)), purpose="batch")

    stored = File.objects.get().storage_name
    assert files_storage.read(stored) == data
    assert sdk.files.content(created.id).content == data
    sdk.files.delete(created.id)
    assert files_storage.names() == []
