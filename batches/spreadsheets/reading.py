"""Read an uploaded CSV or XLSX file of questions into rows, refusing bad files early.

Pure code: no models, no requests; tested without a database. Every refusal is an
UploadError whose message is one sentence for the person who uploaded the file.

- ``max_bytes`` bounds the upload itself (checked from its size, then while reading).
- ``max_rows`` bounds the data rows; reading stops at the first row past it. Blank rows
  are skipped but at most ``max_rows`` of them, so a sheet of a million empty rows
  cannot keep a request busy either.
- An XLSX file passes the zip guard (batches.spreadsheets.zipguard) before openpyxl
  reads it.
- A row without a question is skipped and reported by its row number; only a file
  without a single row that has one is refused.
- Text that PostgreSQL cannot store is refused with the row it is in: a NUL character
  anywhere (a text column and JSON both refuse it), and a chat_id longer than
  ``MAX_CHAT_ID`` (cutting it would merge two conversations whose ids share a prefix).
"""

import csv
import io
import itertools
import tempfile
from collections import Counter
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from openpyxl import load_workbook

from batches.spreadsheets.columns import (
    CHAT_ID,
    KNOWN_COLUMNS,
    QUESTION,
    ColumnNames,
    column_names,
)
from batches.spreadsheets.rows import Row, Sheet, TooLarge, UploadError
from batches.spreadsheets.zipguard import (
    MAX_SHARED_STRINGS,
    MAX_UNCOMPRESSED,
    ZIP_MAGIC,
    check_zip,
)

MAX_CHAT_ID = 255  # batches.models.NAME_MAX, the length of Interaction.chat_id
NO_QUESTION = "no question"
# Delimiters tried on the header line, in order; Excel writes ";" in many locales.
DELIMITERS = (",", ";", "\t")
CHUNK = 64 * 1024


def read_upload(
    file,
    *,
    filename: str,
    max_rows: int,
    max_bytes: int,
    max_uncompressed: int = MAX_UNCOMPRESSED,
    max_shared_strings: int = MAX_SHARED_STRINGS,
    aliases: Mapping[str, str] | None = None,
) -> Sheet:
    """Read an uploaded .csv or .xlsx file (a binary file-like object) into a Sheet.
    ``max_uncompressed`` and ``max_shared_strings`` bound an XLSX file's inflated size
    (see the module docstring); ``aliases`` maps other column names to question,
    chat_id or url.

    1. Refuse by name: only .csv and .xlsx.
    2. Refuse by size when the size is known up front; otherwise while reading.
    3. Refuse by content: an .xlsx must be a zip archive, a .csv must not be one, nor
       binary, and must be UTF-8 (with or without BOM).
    4. Read the header, then the rows up to ``max_rows``, skipping those without a
       question; refuse a file where that leaves no row.
    """
    names = column_names(aliases)
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension not in ("csv", "xlsx"):
        raise UploadError("Upload a .csv or .xlsx file; other file types are not supported.")
    size = _known_size(file)
    if size is not None and size > max_bytes:
        raise TooLarge(_too_big(max_bytes))
    if size == 0:
        raise UploadError("The file is empty.")
    if extension == "csv":
        sheet = _read_csv(file, names=names, max_rows=max_rows, max_bytes=max_bytes)
    else:
        file = _seekable(file, max_bytes)
        check_zip(
            file,
            max_bytes=max_bytes,
            max_uncompressed=max_uncompressed,
            max_shared_strings=max_shared_strings,
        )
        sheet = _read_xlsx(file, names=names, max_rows=max_rows)
    if not sheet.rows:
        raise UploadError(_no_rows(sheet))
    return sheet


def _no_rows(sheet: Sheet) -> str:
    if not sheet.skipped_count:
        return "The file has a header but no rows with a question."
    first = sheet.skipped_rows[0]["row"]
    return (
        f"None of the file's {sheet.skipped_count:,} rows has a question (the first is row "
        f"{first}); fill in the question column."
    )


# Rows, whatever the format ----------------------------------------------------


def _build_sheet(lines, *, names: ColumnNames, max_rows: int) -> Sheet:
    """Turn ``(number, cells)`` pairs into a Sheet: the first non-blank line is the
    header; blank lines are skipped (up to max_rows of them), and so are rows
    without a question (reported, and counted against max_rows)."""
    columns = None
    sheet = None
    blank = 0
    for number, cells in lines:
        if all(_is_blank(cell) for cell in cells):
            blank += 1
            if blank > max_rows:
                raise UploadError(f"The file has more than {max_rows:,} empty rows.")
            continue
        _check_nul(cells, number)
        if columns is None:
            columns = _header(cells, number, names)
            sheet = Sheet(columns=columns)
            continue
        if len(sheet.rows) + sheet.skipped_count >= max_rows:
            raise UploadError(
                f"The file has more than {max_rows:,} rows; split it into smaller files."
            )
        values = _row_values(columns, cells, number)
        if values is None:
            sheet.skip(number, NO_QUESTION)
        else:
            sheet.rows.append(Row(number=number, values=values))
    if sheet is None:
        raise UploadError("The file has no header row and no rows.")
    return sheet


def _header(cells: list, number: int, names: ColumnNames) -> list[str]:
    """The column names: known columns under their own name, others as written."""
    written = [_text(cell) for cell in cells]
    while written and not written[-1]:
        written.pop()
    columns: dict[str, str] = {}  # column -> the name it was written as
    for position, name in enumerate(written, start=1):
        if not name:
            raise UploadError(f"Column {position} of the header (row {number}) has no name.")
        column = names.column(name)
        if column in columns:
            raise UploadError(_twice(column, columns[column], name))
        columns[column] = name
    if QUESTION not in columns:
        aliases = names.question_aliases()
        also = f" (nor {', '.join(aliases)})" if aliases else ""
        raise UploadError(
            f"The file has no 'question' column{also}; the header (row {number}) has: "
            f"{', '.join(written)}."
        )
    return list(columns)


def _twice(column: str, first: str, second: str) -> str:
    if first == second:
        return f"The header has the column {column!r} twice."
    return f"The header has the column {column!r} twice: as {first!r} and as {second!r}."


def _check_nul(cells, number: int) -> None:
    """PostgreSQL stores no NUL character, in text or in JSON: refuse it here with its
    row rather than fail on insert."""
    if any(isinstance(cell, str) and "\x00" in cell for cell in cells):
        raise UploadError(
            f"Row {number} contains a NUL character (\\0), which cannot be stored; "
            "remove it and upload the file again."
        )


def _row_values(columns: list[str], cells: list, number: int) -> dict[str, Any] | None:
    """The row's values by column, or None when it has no question."""
    extra = cells[len(columns) :]
    if any(not _is_blank(cell) for cell in extra):
        raise UploadError(f"Row {number} has more values than the header has columns.")
    values = {}
    for position, name in enumerate(columns):
        cell = cells[position] if position < len(cells) else None
        values[name] = _text(cell) if name in KNOWN_COLUMNS else _json_value(cell)
    if not values[QUESTION]:
        return None
    if len(values.get(CHAT_ID) or "") > MAX_CHAT_ID:
        raise UploadError(f"Row {number} has a chat_id longer than {MAX_CHAT_ID} characters.")
    return values


def _is_blank(cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _text(cell) -> str:
    """A cell as stripped text; whole floats lose their ".0" (Excel stores 7 as 7.0)."""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    value = _json_value(cell)
    return "" if value is None else str(value)


def _json_value(cell):
    if isinstance(cell, str):
        cell = cell.strip()
        return cell or None
    if isinstance(cell, datetime | date | time):
        return cell.isoformat()
    if isinstance(cell, timedelta):
        return str(cell)
    if cell is None or isinstance(cell, bool | int | float):
        return cell
    return str(cell)


# Size and streaming -------------------------------------------------------------


def _too_big(max_bytes: int) -> str:
    return f"The file is larger than the limit of {max_bytes} bytes."


def _known_size(file) -> int | None:
    size = getattr(file, "size", None)
    if isinstance(size, int):
        return size
    try:
        position = file.tell()
        size = file.seek(0, io.SEEK_END)
        file.seek(position)
    except (AttributeError, OSError, ValueError):
        return None
    return size - position


class _LimitedReader(io.RawIOBase):
    """A raw stream over ``file`` that refuses to read more than ``max_bytes``."""

    def __init__(self, file, max_bytes: int):
        self._file = file
        self._left = max_bytes
        self._max_bytes = max_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._file.read(len(buffer))
        if len(data) > self._left:
            raise TooLarge(_too_big(self._max_bytes))
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


# CSV ---------------------------------------------------------------------------


def _read_csv(file, *, names: ColumnNames, max_rows: int, max_bytes: int) -> Sheet:
    stream = io.BufferedReader(_LimitedReader(file, max_bytes), CHUNK)
    _check_csv_start(stream.peek(CHUNK)[:CHUNK])
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = None
    rows = Counter()  # rows read so far, for the number of the row that fails
    try:
        first = text.readline()
        # strict: a quote never closed is an error, not a cell that swallows every
        # row after it.
        reader = csv.reader(
            itertools.chain([first], text), delimiter=_delimiter(first, names), strict=True
        )
        return _build_sheet(_counted(reader, rows), names=names, max_rows=max_rows)
    except UnicodeDecodeError:
        raise UploadError("The CSV file is not UTF-8 text; save it as CSV UTF-8.") from None
    except csv.Error as exc:
        line = reader.line_num if reader else 1
        raise UploadError(_csv_error(exc, row=rows["read"] + 1, line=line)) from None
    finally:
        text.detach()


def _counted(reader, rows: Counter):
    for number, cells in enumerate(reader, start=1):
        rows["read"] = number
        yield number, cells


def _csv_error(exc: csv.Error, *, row: int, line: int) -> str:
    if "unexpected end of data" in str(exc):
        return (
            f'Row {row} of the CSV file opens a quote (") that is never closed, so it '
            "would run to the end of the file; close the quote or remove it."
        )
    return f"The CSV file could not be read near line {line}: {exc}."


def _check_csv_start(head: bytes) -> None:
    if head.startswith(ZIP_MAGIC):
        raise UploadError("This file is an XLSX workbook (or another zip archive), not a CSV.")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UploadError("The CSV file is UTF-16 text; save it as CSV UTF-8.")
    if b"\x00" in head:
        # Binary files show a NUL early; a later one is refused with its row.
        raise UploadError("The file is binary, not CSV text.")


def _delimiter(header_line: str, names: ColumnNames) -> str:
    """Comma, unless only another delimiter makes a 'question' column appear."""
    for delimiter in DELIMITERS:
        written = next(csv.reader([header_line], delimiter=delimiter), [])
        if any(names.column(name) == QUESTION for name in written):
            return delimiter
    return ","


# XLSX --------------------------------------------------------------------------


def _read_xlsx(file, *, names: ColumnNames, max_rows: int) -> Sheet:
    """Read a workbook that check_zip has let through."""
    file.seek(0)
    try:
        workbook = load_workbook(file, read_only=True, data_only=True)
    except UploadError:
        raise
    except Exception:  # openpyxl raises anything from KeyError to XML errors on bad input
        raise UploadError("The XLSX file is corrupt or is not an Excel workbook.") from None
    try:
        if not workbook.worksheets:
            raise UploadError("The XLSX workbook has no worksheet.")
        sheet = workbook.worksheets[0]
        # Declared dimensions can be wrong (then rows are cut) or huge (then every row
        # is padded to thousands of cells); the rows themselves say how wide they are.
        sheet.reset_dimensions()
        rows = enumerate(sheet.iter_rows(values_only=True), start=1)
        return _build_sheet(rows, names=names, max_rows=max_rows)
    except UploadError:
        raise
    except Exception:
        raise UploadError("The XLSX file is corrupt or is not an Excel workbook.") from None
    finally:
        workbook.close()


def _seekable(file, max_bytes: int):
    """zipfile needs to seek; copy a stream that cannot into a spooled temporary file."""
    try:
        if file.seekable():
            return file
    except AttributeError:
        pass
    copy = tempfile.SpooledTemporaryFile(max_size=8 * CHUNK)  # noqa: SIM115 (returned)
    reader = _LimitedReader(file, max_bytes)
    while chunk := reader.read(CHUNK):
        copy.write(chunk)
    return copy
