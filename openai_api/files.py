"""Where the bytes of files are: the storage that holds trace files
(settings.STORAGES["traces"]: a local folder by default, S3 by configuration), read a
chunk at a time."""

import secrets
from collections.abc import Iterator

from django.core.files.storage import storages

READ_CHUNK = 1024 * 1024


def storage():
    return storages["traces"]


def stored_chunks(name: str) -> Iterator[bytes]:
    with storage().open(name, "rb") as stored:
        yield from stored.chunks(READ_CHUNK)


def upload_name(pk) -> str:
    return f"openai/files/{pk.hex}.jsonl"


def result_name(pk) -> str:
    """A fresh name for a result file's bytes: two writers never write one file."""
    return f"openai/results/{pk.hex}-{secrets.token_hex(4)}.jsonl"
