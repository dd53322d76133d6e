"""Read an uploaded CSV or XLSX file of questions into rows, refusing bad files early.

Pure code: no models, no requests; tested without a database. Every refusal is an
UploadError whose message is one sentence for the person who uploaded the file.

Limits, and why:
- ``max_bytes`` bounds the upload itself (checked from its size, then while reading).
- ``max_rows`` bounds the data rows; reading stops at the first row past it. Blank rows
  are skipped but at most ``max_rows`` of them, so a sheet of a million empty rows
  cannot keep a request busy either.
- An XLSX file is a zip archive, and a small one can inflate to gigabytes of XML
  (a 3 MB file that inflates to 274 MB kept openpyxl busy for two minutes). Before
  openpyxl sees it, the archive's central directory is checked with zipfile, which
  reads no member data and takes microseconds:
  * at most ``MAX_ZIP_MEMBERS`` members,
  * total declared uncompressed size at most ``MAX_INFLATION`` x max_bytes
    (50 MiB uploads → 1000 MiB): generous, as a workbook at the row limit is far
    smaller than the byte limit,
  * no member larger than ``RATIO_EXEMPT_BYTES`` whose compression ratio exceeds
    ``MAX_RATIO`` (50). Measured: sheets written by openpyxl compress about 15x even
    when every row is the same, Excel-style XML 11-28x (28 for rows of nothing but
    styles); the 3 MB file above was 91x, and bombs built from runs of identical bytes
    deflate about 1000x.
  The declared sizes can be trusted because zipfile never inflates a member past its
  declared size (it stops there and fails the CRC check), and openpyxl reads through it.
"""

import csv
import io
import itertools
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from openpyxl import load_workbook

QUESTION, CHAT_ID, URL = "question", "chat_id", "url"
KNOWN_COLUMNS = (QUESTION, CHAT_ID, URL)

MAX_ZIP_MEMBERS = 10_000
MAX_INFLATION = 20
MAX_RATIO = 50
RATIO_EXEMPT_BYTES = 1024 * 1024
# Delimiters tried on the header line, in order; Excel writes ";" in many locales.
DELIMITERS = (",", ";", "\t")
ZIP_MAGIC = b"PK\x03\x04"
CHUNK = 64 * 1024


class UploadError(ValueError):
    """str(exc) is one sentence for the user saying what is wrong."""


@dataclass
class Row:
    """One data row. ``number`` is its row number in the file, the header being row 1
    (the number Excel shows; for CSV a quoted multi-line cell still counts as one row).
    ``values`` holds every column: question, chat_id and url as str ("" when blank),
    other blank cells as None, dates as ISO strings."""

    number: int
    values: dict[str, Any]


@dataclass
class Sheet:
    columns: list[str]
    rows: list[Row] = field(default_factory=list)

    def summary(self) -> dict:
        """What a dry run reports: items, columns and conversations (blank chat_id =
        a conversation of its own)."""
        groups = Counter(row.values.get(CHAT_ID) or f"row {row.number}" for row in self.rows)
        return {
            "total_items": len(self.rows),
            "columns": list(self.columns),
            "chat_groups": len(groups),
            "largest_chat_group": max(groups.values(), default=0),
        }


def read_upload(file, *, filename: str, max_rows: int, max_bytes: int) -> Sheet:
    """Read an uploaded .csv or .xlsx file (a binary file-like object) into a Sheet.

    1. Refuse by name: only .csv and .xlsx.
    2. Refuse by size when the size is known up front; otherwise while reading.
    3. Refuse by content: an .xlsx must be a zip archive, a .csv must not be one, nor
       binary, and must be UTF-8 (with or without BOM).
    4. Read the header, then the rows up to ``max_rows``.
    """
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension not in ("csv", "xlsx"):
        raise UploadError("Upload a .csv or .xlsx file; other file types are not supported.")
    size = _known_size(file)
    if size is not None and size > max_bytes:
        raise UploadError(_too_big(max_bytes))
    if size == 0:
        raise UploadError("The file is empty.")
    reader = _read_csv if extension == "csv" else _read_xlsx
    sheet = reader(file, max_rows=max_rows, max_bytes=max_bytes)
    if not sheet.rows:
        raise UploadError("The file has a header but no rows with a question.")
    return sheet


# Rows, whatever the format ----------------------------------------------------


def _build_sheet(lines, *, max_rows: int) -> Sheet:
    """Turn ``(number, cells)`` pairs into a Sheet: the first non-blank line is the
    header; blank lines are skipped (up to max_rows of them)."""
    columns = None
    sheet = None
    blank = 0
    for number, cells in lines:
        if all(_is_blank(cell) for cell in cells):
            blank += 1
            if blank > max_rows:
                raise UploadError(f"The file has more than {max_rows:,} empty rows.")
            continue
        if columns is None:
            columns = _header(cells, number)
            sheet = Sheet(columns=columns)
            continue
        if len(sheet.rows) >= max_rows:
            raise UploadError(
                f"The file has more than {max_rows:,} rows; split it into smaller files."
            )
        sheet.rows.append(Row(number=number, values=_row_values(columns, cells, number)))
    if sheet is None:
        raise UploadError("The file has no header row and no rows.")
    return sheet


def _header(cells: list, number: int) -> list[str]:
    names = [_text(cell) for cell in cells]
    while names and not names[-1]:
        names.pop()
    columns = []
    for position, name in enumerate(names, start=1):
        if not name:
            raise UploadError(f"Column {position} of the header (row {number}) has no name.")
        if name.lower() in KNOWN_COLUMNS:
            name = name.lower()
        if name in columns:
            raise UploadError(f"The header has the column {name!r} twice.")
        columns.append(name)
    if QUESTION not in columns:
        raise UploadError(
            f"The file has no 'question' column; the header (row {number}) has: "
            f"{', '.join(columns)}."
        )
    return columns


def _row_values(columns: list[str], cells: list, number: int) -> dict[str, Any]:
    extra = cells[len(columns) :]
    if any(not _is_blank(cell) for cell in extra):
        raise UploadError(f"Row {number} has more values than the header has columns.")
    values = {}
    for position, name in enumerate(columns):
        cell = cells[position] if position < len(cells) else None
        values[name] = _text(cell) if name in KNOWN_COLUMNS else _json_value(cell)
    if not values[QUESTION]:
        raise UploadError(f"Row {number} has no question.")
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
    return f"The file is larger than the {max_bytes / 1024 / 1024:g} MiB limit."


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
            raise UploadError(_too_big(self._max_bytes))
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


# CSV ---------------------------------------------------------------------------


def _read_csv(file, *, max_rows: int, max_bytes: int) -> Sheet:
    stream = io.BufferedReader(_LimitedReader(file, max_bytes), CHUNK)
    _check_csv_start(stream.peek(CHUNK)[:CHUNK])
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = None
    try:
        first = text.readline()
        reader = csv.reader(itertools.chain([first], text), delimiter=_delimiter(first))
        return _build_sheet(enumerate(reader, start=1), max_rows=max_rows)
    except UnicodeDecodeError:
        raise UploadError("The CSV file is not UTF-8 text; save it as CSV UTF-8.") from None
    except csv.Error as exc:
        line = reader.line_num if reader else 1
        raise UploadError(f"The CSV file could not be read near line {line}: {exc}.") from None
    finally:
        text.detach()


def _check_csv_start(head: bytes) -> None:
    if head.startswith(ZIP_MAGIC):
        raise UploadError("This file is an XLSX workbook (or another zip archive), not a CSV.")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UploadError("The CSV file is UTF-16 text; save it as CSV UTF-8.")
    if b"\x00" in head:
        raise UploadError("The file is binary, not CSV text.")


def _delimiter(header_line: str) -> str:
    """Comma, unless only another delimiter makes a 'question' column appear."""
    for delimiter in DELIMITERS:
        names = next(csv.reader([header_line], delimiter=delimiter), [])
        if any(name.strip().lower() == QUESTION for name in names):
            return delimiter
    return ","


# XLSX --------------------------------------------------------------------------


def _read_xlsx(file, *, max_rows: int, max_bytes: int) -> Sheet:
    file = _seekable(file, max_bytes)
    check_zip(file, max_bytes=max_bytes)
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
        return _build_sheet(rows, max_rows=max_rows)
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


def check_zip(file, *, max_bytes: int) -> None:
    """Refuse an XLSX that is not a zip, or whose members would inflate too far
    (see the module docstring for the limits). Reads only the central directory."""
    file.seek(0)
    if file.read(4) != ZIP_MAGIC:
        raise UploadError("The file is not a valid XLSX workbook (it is not a zip archive).")
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise UploadError("The XLSX file is corrupt (its zip archive cannot be read).") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise UploadError("The XLSX file has too many parts to be a workbook.")
    total = sum(member.file_size for member in members)
    if total > MAX_INFLATION * max_bytes:
        raise UploadError(_bomb(total))
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > RATIO_EXEMPT_BYTES and ratio > MAX_RATIO:
            raise UploadError(_bomb(total))


def _bomb(total: int) -> str:
    return (
        f"The XLSX file would inflate to {total / 1024 / 1024:,.0f} MiB, far more than a "
        "workbook of its size holds; it is refused as a likely zip bomb."
    )
