"""A batch's results as a file (CSV, XLSX or JSON): streamed to a response, copied
to a stream or written to a path, in chunks whatever the number of items."""

import os
import tempfile
from collections.abc import Iterator

from batches.models import Batch
from batches.processors.base import USAGE_FIELDS
from batches.spreadsheets.columns import CHAT_ID
from batches.spreadsheets.exports import iter_csv, iter_json, write_xlsx

RESULT_COLUMNS = ("output", "status", "error", *USAGE_FIELDS)
EXPORT_CHUNK = 2000


def result_columns(batch: Batch) -> list[str]:
    """row_number, chat_id, the upload's other columns, output, status, error. An
    upload column named like one of ours is written as ``input.<name>``."""
    ours = {"row_number", CHAT_ID, *RESULT_COLUMNS}
    inputs = [_input_name(name, ours) for name in batch.columns if name != CHAT_ID]
    return ["row_number", CHAT_ID, *inputs, *RESULT_COLUMNS]


def _input_name(name: str, ours: set[str]) -> str:
    return f"input.{name}" if name in ours else name


def result_rows(batch: Batch) -> Iterator[dict]:
    """One flat dict per item, in row order, read in chunks (bounded memory)."""
    ours = {"row_number", CHAT_ID, *RESULT_COLUMNS}
    items = (
        batch.interactions.order_by("row_number")
        .values_list("row_number", "chat_id", "input", "output", "status", "error", *USAGE_FIELDS)
        .iterator(chunk_size=EXPORT_CHUNK)
    )
    for row_number, chat_id, values, output, status, error, *usage in items:
        row = {_input_name(k, ours): v for k, v in values.items() if k != CHAT_ID}
        row.update(
            row_number=row_number,
            chat_id=chat_id,
            output=(output or {}).get("text", ""),
            status=status,
            error=error,
            **dict(zip(USAGE_FIELDS, usage, strict=True)),
        )
        yield row


def result_items(batch: Batch) -> Iterator[dict]:
    """One nested dict per item for JSON: the input columns stay under ``input``."""
    items = (
        batch.interactions.order_by("row_number")
        .values("row_number", "chat_id", "input", "output", "status", "error", *USAGE_FIELDS)
        .iterator(chunk_size=EXPORT_CHUNK)
    )
    for item in items:
        item["output"] = (item["output"] or {}).get("text", "")
        yield item


def results_filename(batch: Batch, extension: str) -> str:
    stem = (batch.source_name.rsplit(".", 1)[0] if batch.source_name else "") or "batch"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in stem)[:80]
    return f"{safe}-{str(batch.pk)[:8]}-results.{extension}"


FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}


def results_stream(batch: Batch, format: str) -> Iterator[bytes]:
    """The results file in chunks. XLSX is written to a temporary file first
    (a zip cannot be streamed as it is written) and read back in chunks."""
    if format == "csv":
        return iter_csv(result_rows(batch), result_columns(batch))
    if format == "json":
        return iter_json(result_items(batch))
    return _xlsx_chunks(batch)


def _xlsx_chunks(batch: Batch) -> Iterator[bytes]:
    with tempfile.TemporaryFile() as out:
        write_xlsx(result_rows(batch), result_columns(batch), out)
        out.seek(0)
        while chunk := out.read(64 * 1024):
            yield chunk


def results_write(*, batch: Batch, format: str, path: str) -> int:
    """Write the results file atomically (a temporary file beside it, then a rename);
    returns its size in bytes."""
    target = os.path.abspath(path)
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".export-")
    try:
        with os.fdopen(handle, "wb") as out:
            results_copy(batch=batch, format=format, out=out)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    return os.path.getsize(target)


def results_copy(*, batch: Batch, format: str, out) -> int:
    """Write the results file to the binary stream ``out``; returns its size in bytes."""
    size = 0
    for chunk in results_stream(batch, format):
        out.write(chunk)
        size += len(chunk)
    out.flush()
    return size
