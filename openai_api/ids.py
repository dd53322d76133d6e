"""OpenAI's identifiers for our objects: ``file-<hex>`` and ``batch_<hex>``, the hex
being the object's UUID. Anything else names no object (a 404, like a missing one)."""

import re
import uuid

_FILE = re.compile(r"^file-([0-9a-f]{32})$")
_BATCH = re.compile(r"^batch_([0-9a-f]{32})$")


def file_id(pk: uuid.UUID | None) -> str | None:
    return None if pk is None else f"file-{pk.hex}"


def batch_id(pk: uuid.UUID) -> str:
    return f"batch_{pk.hex}"


def file_pk(value: str) -> uuid.UUID | None:
    match = _FILE.match(value or "")
    return uuid.UUID(match.group(1)) if match else None


def batch_pk(value: str) -> uuid.UUID | None:
    match = _BATCH.match(value or "")
    return uuid.UUID(match.group(1)) if match else None
