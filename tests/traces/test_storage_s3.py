"""The S3 files storage against moto's S3-compatible server: names confined, files
staged out of sight until published, SHA-256 recorded. No database."""

import hashlib

import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile

from traces.s3 import S3FilesStorage


@pytest.fixture
def bucket(s3_server):
    return s3_server.create_bucket()


@pytest.fixture
def storage(s3_server, bucket):
    return S3FilesStorage(**s3_server.storage_options(bucket, "files"))


def test_save_stores_the_bytes_under_the_prefix_with_their_sha256(storage, s3_server, bucket):
    assert storage.save("owners/1/a/t.json", ContentFile(b'{"x": 1}')) == "owners/1/a/t.json"

    assert s3_server.keys(bucket) == ["files/owners/1/a/t.json"]
    assert storage.open("owners/1/a/t.json").read() == b'{"x": 1}'
    assert storage.sha256("owners/1/a/t.json") == hashlib.sha256(b'{"x": 1}').hexdigest()


def test_saving_a_path_again_replaces_the_object(storage, s3_server, bucket):
    storage.save("t.txt", ContentFile(b"first version, longer"))
    storage.save("t.txt", ContentFile(b"second"))

    assert storage.open("t.txt").read() == b"second"
    assert s3_server.keys(bucket) == ["files/t.txt"]


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/passwd", "a/../../b.txt", "a/\x00.txt"])
def test_a_name_out_of_the_prefix_is_refused_and_nothing_is_stored(
    storage, s3_server, bucket, name
):
    with pytest.raises(SuspiciousFileOperation):
        storage.save(name, ContentFile(b"x"))
    assert s3_server.keys(bucket) == []


def test_a_staged_file_is_not_visible_at_its_name_until_published(storage, s3_server, bucket):
    storage.save("t.txt", ContentFile(b"old"))
    staged = storage.stage("t.txt", [b"new ", b"bytes"])

    assert storage.open("t.txt").read() == b"old"
    staged.publish()
    assert storage.open("t.txt").read() == b"new bytes"
    assert storage.sha256("t.txt") == hashlib.sha256(b"new bytes").hexdigest()
    assert s3_server.keys(bucket) == ["files/t.txt"]


def test_a_publish_the_bucket_refuses_is_an_os_error_and_leaves_the_target_alone(
    storage, s3_server, bucket
):
    staged = storage.stage("denied/t.txt", [b"x"])

    with pytest.raises(OSError, match="AccessDenied"):
        staged.publish()
    assert s3_server.keys(bucket) == []


def test_a_missing_file_is_file_not_found(storage):
    with pytest.raises(FileNotFoundError):
        storage.sha256("nowhere.txt")
    assert not storage.exists("nowhere.txt")


def test_a_large_file_goes_up_as_a_stream_and_keeps_its_sha256(storage, monkeypatch):
    monkeypatch.setattr("traces.s3.DIRECT_PUT_MAX", 1024)
    data = b"0123456789abcdef" * 4096

    storage.save("openai/files/big.jsonl", ContentFile(data))

    assert storage.open("openai/files/big.jsonl").read() == data
    assert storage.sha256("openai/files/big.jsonl") == hashlib.sha256(data).hexdigest()
