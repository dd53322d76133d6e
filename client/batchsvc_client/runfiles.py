"""Runs files: a JSON array of runs, JSON Lines (one run a line), or the API's
``{"runs": [...]}`` envelope, told apart by their first bytes.

:func:`sniff` is the one rule for what such a file is, shared by ``batchsvc runs
upload`` and the server's ``import_runs``; :func:`read_runs` reads one for the
command line, streaming JSON Lines so that a file of any length fits in memory.
"""

import json
import re
from collections.abc import Iterator
from typing import IO

ARRAY, LINES, ENVELOPE = "a JSON array", "JSON Lines", 'a {"runs": [...]} envelope'
HEAD_BYTES = 8192  # what sniff looks at (the default buffer of a binary stream)
BOM = b"\xef\xbb\xbf"
_ENVELOPE = re.compile(rb'\{\s*"runs"\s*:')
# Files people mistake for runs, by their first bytes.
_MAGIC = {
    b"PK\x03\x04": "a zip archive (an .xlsx workbook?)",
    b"\x1f\x8b": "gzip-compressed",
    b"%PDF": "a PDF",
    b"SQLite format 3": "an SQLite database",
    b"\xff\xfe": "UTF-16 text",
    b"\xfe\xff": "UTF-16 text",
}


class RunsFileError(ValueError):
    """str(exc) completes the sentence "<file> ...": what is wrong and what to do."""


class BadLine:
    """A line of JSON Lines that is not JSON: it fails as an item, by its line number."""

    def __init__(self, line_number: int, problem: str):
        self.error = f"line {line_number} is not valid JSON: {problem}"


def sniff(head: bytes) -> str:
    """ARRAY, LINES or ENVELOPE for a file starting with ``head`` (its first bytes, as
    many as are at hand); RunsFileError when it is empty, binary, or none of them."""
    text = head.removeprefix(BOM).lstrip()
    if not text:
        raise RunsFileError("is empty: it holds no runs.")
    for magic, kind in _MAGIC.items():
        if head.startswith(magic):
            raise RunsFileError(f"is {kind}, not text; give runs as JSON (UTF-8 text).")
    if b"\x00" in head or not _utf8(head):
        raise RunsFileError("is not UTF-8 text (it looks binary); give runs as JSON.")
    if text.startswith(b"["):
        return ARRAY
    if _ENVELOPE.match(text):
        return ENVELOPE
    if text.startswith(b"{"):
        return LINES
    raise RunsFileError(
        "is not JSON runs: it starts with neither [ nor {; give a JSON array of runs, "
        'JSON Lines (one run a line) or {"runs": [...]}.'
    )


def _utf8(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A character cut at the end of the head is not a reason to refuse.
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def peek(stream: IO[bytes]) -> bytes:
    """The first bytes of a buffered binary stream, left in it to be read."""
    return stream.peek(HEAD_BYTES)[:HEAD_BYTES]


def read_runs(stream: IO[bytes]) -> tuple[str, Iterator[tuple[int | None, object]]]:
    """The file's format and its items: ``(line_number, run)`` pairs, where the line
    number is known for JSON Lines only and a run that is not JSON is a BadLine."""
    kind = sniff(peek(stream))
    if stream.peek(len(BOM))[: len(BOM)] == BOM:
        stream.read(len(BOM))
    if kind == LINES:
        return kind, _lines(stream)
    try:
        data = json.loads(stream.read())
    except ValueError as exc:
        raise RunsFileError(f"is not valid JSON ({exc}); nothing was sent.") from None
    runs = data.get("runs") if kind == ENVELOPE else data
    if not isinstance(runs, list):
        raise RunsFileError('has "runs" that is not a list; give {"runs": [run, ...]}.')
    return kind, ((None, run) for run in runs)


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, object]]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError as exc:
            yield number, BadLine(number, str(exc))
