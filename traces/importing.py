"""Reading runs from a file for ``import_runs``: a JSON array or JSON Lines."""

import sys
from collections.abc import Iterator
from itertools import islice
from typing import IO

import msgspec

_decoder = msgspec.json.Decoder(msgspec.Raw)
_array_decoder = msgspec.json.Decoder(list[msgspec.Raw])


class NotJSON:
    """Stands in for a line that is not JSON, so it fails as an item with its line number."""

    def __init__(self, line_number: int, problem: str):
        self.error = f"line {line_number} is not valid JSON: {problem}"


def open_source(path: str) -> IO[bytes]:
    return sys.stdin.buffer if path == "-" else open(path, "rb")


def read_runs(stream: IO[bytes]) -> Iterator:
    """Yield raw runs (JSON text, for runs_ingest to decode once each). A JSON array
    is split whole; JSON Lines are streamed, each line's syntax checked."""
    head = stream.read(1)
    while head.isspace():
        head = stream.read(1)
    if head == b"[":
        try:
            yield from _array_decoder.decode(head + stream.read())
        except msgspec.DecodeError as exc:
            raise ValueError(f"the file is not a valid JSON array: {exc}") from None
        return
    first = head + stream.readline()
    for number, line in enumerate(_lines(first, stream), start=1):
        if not line.strip():
            continue
        try:
            yield _decoder.decode(line)
        except msgspec.DecodeError as exc:
            yield NotJSON(number, str(exc))


def _lines(first: bytes, stream: IO[bytes]) -> Iterator[bytes]:
    yield first
    yield from stream


def chunked(iterable, size: int) -> Iterator[list]:
    iterator = iter(iterable)
    while chunk := list(islice(iterator, size)):
        yield chunk
