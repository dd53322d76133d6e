"""The lines of a batch input file (JSONL, one request a line), read a chunk at a time
and checked the way OpenAI describes them, before anything is created. Pure functions
over byte chunks: no Django, no database."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import msgspec

from batches.processors.passthrough import ENDPOINTS

_decode = msgspec.json.Decoder().decode


class _Body(msgspec.Struct):
    """What is checked of a body; its other fields are skipped, never decoded."""

    stream: object = None
    model: object = None


class _Line(msgspec.Struct):
    custom_id: object = None
    method: object = None
    url: object = None
    body: _Body | None = None


_decode_line = msgspec.json.Decoder(_Line).decode


class Refused(ValueError):
    """An input file refused: ``str(exc)`` says why, naming the line; ``code`` is
    OpenAI's error code for it."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@dataclass
class Summary:
    """What a checked file holds."""

    count: int = 0
    models: set = field(default_factory=set)

    @property
    def model(self) -> str:
        """The model every line asks for, or "" when they differ or name none."""
        return next(iter(self.models)) if len(self.models) == 1 else ""


def numbered(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` of every line that is not blank, from 1, without its
    line break (``\\n`` or ``\\r\\n``)."""
    number, rest = 0, b""
    for chunk in chunks:
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        for part in parts:
            number += 1
            if part.strip():
                yield number, part.strip()
    if rest.strip():
        yield number + 1, rest.strip()


def check(chunks: Iterable[bytes], *, endpoint: str, max_lines: int) -> Summary:
    """The summary of a valid input file for ``endpoint``, or :class:`Refused` at its
    first bad line."""
    check_endpoint(endpoint)
    summary, seen = Summary(), set()
    for number, raw in numbered(chunks):
        summary.count += 1
        if summary.count > max_lines:
            raise Refused(
                f"Line {number}: the input file has more than {max_lines} requests, the "
                "limit (OPENAI_BATCH_MAX_LINES).",
                "too_many_requests",
            )
        model = check_line(number, raw, endpoint=endpoint, seen=seen)
        if isinstance(model, str):
            summary.models.add(model)
    if not summary.count:
        raise Refused("The input file is empty: it has no request line.", "empty_file")
    return summary


def check_endpoint(endpoint: str) -> None:
    if endpoint not in ENDPOINTS:
        raise Refused(
            f"The endpoint {endpoint!r} is not supported; use one of: {', '.join(ENDPOINTS)}.",
            "unsupported_endpoint",
        )


def check_line(number: int, raw: bytes, *, endpoint: str, seen: set):
    """Refused unless the line is a request for ``endpoint`` with a custom_id not in
    ``seen`` (which it joins); its body's model."""
    try:
        line = _decode_line(raw)
    except msgspec.ValidationError:
        line = None  # not an object, or a body that is not one: said below
    except (msgspec.DecodeError, RecursionError):
        raise Refused(f"Line {number} is not valid JSON.", "invalid_json_line") from None
    if line is None or line.body is None:
        refuse_shape(number, raw)
    custom_id = line.custom_id
    if not isinstance(custom_id, str) or not custom_id:
        raise Refused(f"Line {number} has no custom_id (a non-empty string).", "missing_custom_id")
    if custom_id in seen:
        raise Refused(
            f"Line {number}: the custom_id {custom_id!r} is that of an earlier line; each "
            "line's custom_id must be unique.",
            "duplicate_custom_id",
        )
    seen.add(custom_id)
    if line.method != "POST":
        raise Refused(
            f"Line {number}: the method must be POST, not {line.method!r}.", "invalid_method"
        )
    if line.url != endpoint:
        raise Refused(
            f"Line {number}: the url {line.url!r} is not the batch's endpoint {endpoint}; "
            "every line must use it.",
            "mismatched_url",
        )
    if line.body.stream is True:
        raise Refused(
            f"Line {number}: body.stream is true; a batch cannot stream its answers.",
            "stream_not_supported",
        )
    if b"\\u0000" in raw:
        raise Refused(
            f"Line {number} contains the NUL character (\\u0000), which cannot be stored.",
            "invalid_json_line",
        )
    return line.body.model


def refuse_shape(number: int, raw: bytes):
    """Why a line that is JSON is not a request: read again as plain JSON to say what
    it is (only ever for the line refused)."""
    line = _decode(raw)
    if not isinstance(line, dict):
        raise Refused(f"Line {number} is not a JSON object.", "invalid_json_line")
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise Refused(f"Line {number} has no custom_id (a non-empty string).", "missing_custom_id")
    raise Refused(f"Line {number}: body must be a JSON object.", "invalid_body")
