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
  * total declared uncompressed size at most ``max_uncompressed`` (default
    ``MAX_UNCOMPRESSED``, 256 MiB) and at most ``MAX_INFLATION`` x max_bytes. openpyxl
    reads about 10 MB of sheet XML a second, so this bounds a request to about half a
    minute; a ratio limit alone does not (a 4.4 MB file of shared strings that deflate
    45x, under every ratio limit, inflated to 200 MiB and was parsed for a minute).
    Measured: 100,000 rows of five columns (a 40-word question, chat_id, url, a
    10-word note, a number) written by openpyxl are 26 MB and inflate to 64 MB, read in
    6.5 s;
  * the shared strings part (found in ``[Content_Types].xml``, as openpyxl finds it) at
    most ``max_shared_strings`` (default ``MAX_SHARED_STRINGS``, 64 MiB): openpyxl
    loads it whole into memory before reading any row. It holds each distinct text of
    the sheet once, so a workbook holding as much text as a CSV at the 50 MiB upload
    limit fits;
  * no member larger than ``RATIO_EXEMPT_BYTES`` whose compression ratio exceeds
    ``MAX_RATIO`` (50), and no XML member larger than ``LARGE_XML_BYTES`` (32 MiB)
    whose ratio exceeds ``MAX_XML_RATIO`` (32). Measured: sheets written by openpyxl
    compress about 15x (23x when every row is the same: 18 MB at 100,000 rows),
    Excel-style XML 11-28x (28 for rows of nothing but styles); shared strings of
    100,000 questions from one template differing by a number 48x, but only 14 MB;
    the 3 MB file above was 91x, and bombs built from runs of identical bytes deflate
    about 1000x.
  The declared sizes can be trusted because zipfile never inflates a member past its
  declared size (it stops there and fails the CRC check), and openpyxl reads through it.

Column names: ``question``, ``chat_id`` and ``url`` are found whatever their case and
whatever spaces, underscores and hyphens they carry (``Chat ID``, ``chatId``,
``chat-id``), and under the aliases the caller passes (settings.BATCH_COLUMN_ALIASES,
e.g. ``REDACTEDQUESTION`` for question). Other columns keep the name they were given.

A row without a question is skipped and reported by its row number; only a file
without a single row that has one is refused.

Text that PostgreSQL cannot store is refused with the row it is in: a NUL character
anywhere (a text column and JSON both refuse it), and a chat_id longer than
``MAX_CHAT_ID`` (cutting it would merge two conversations whose ids share a prefix).
"""

import csv
import io
import itertools
import re
import tempfile
import zipfile
from array import array
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from xml.etree import ElementTree

import msgspec
from openpyxl import load_workbook

QUESTION, CHAT_ID, URL = "question", "chat_id", "url"
KNOWN_COLUMNS = (QUESTION, CHAT_ID, URL)

MiB = 1024 * 1024
MAX_ZIP_MEMBERS = 10_000
MAX_INFLATION = 20
MAX_UNCOMPRESSED = 256 * MiB
MAX_SHARED_STRINGS = 64 * MiB
MAX_RATIO = 50
RATIO_EXEMPT_BYTES = 1 * MiB
MAX_XML_RATIO = 32
LARGE_XML_BYTES = 32 * MiB
# [Content_Types].xml lists a workbook's parts: a few KiB even for many sheets.
MAX_CONTENT_TYPES = 1 * MiB
CONTENT_TYPES = "[Content_Types].xml"
SHARED_STRINGS_TYPE = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
)
MAX_CHAT_ID = 255  # batches.models.NAME_MAX, the length of Interaction.chat_id
# How many skipped rows an answer lists; skipped_count says how many there were.
MAX_SKIPPED_LISTED = 100
FIRST_ROWS = 5  # rows a dry run shows, to check the columns were read as meant
NO_QUESTION = "no question"
# Delimiters tried on the header line, in order; Excel writes ";" in many locales.
DELIMITERS = (",", ";", "\t")
ZIP_MAGIC = b"PK\x03\x04"
CHUNK = 64 * 1024


class UploadError(ValueError):
    """str(exc) is one sentence for the user saying what is wrong."""


@dataclass(slots=True)  # a 100,000-row upload holds 100,000 of them
class Row:
    """One data row. ``number`` is its row number in the file, the header being row 1
    (the number Excel shows; for CSV a quoted multi-line cell still counts as one row).
    ``values`` holds every column: question, chat_id and url as str ("" when blank),
    other blank cells as None, dates as ISO strings."""

    number: int
    values: dict[str, Any]


class RowSpool:
    """The rows of a sheet, kept as JSON in a temporary file (in memory up to
    ``SPOOL_IN_MEMORY`` bytes) rather than as objects: what an upload holds is a
    few bytes a row on the heap, whatever the number of rows. Reads like a list of
    :class:`Row`: ``len``, iteration, an index or a slice decode what they return."""

    def __init__(self):
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        self._ends = array("Q")  # where each row's JSON ends in the file

    def append(self, row: Row) -> None:
        self._file.seek(0, io.SEEK_END)
        self._file.write(_spool_json.encode((row.number, row.values)))
        self._ends.append(self._file.tell())

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, at):
        if isinstance(at, slice):
            return [self._read(i) for i in range(*at.indices(len(self)))]
        return self._read(range(len(self))[at])

    def __iter__(self):
        for start in range(0, len(self), SPOOL_READ):
            yield from self[start : start + SPOOL_READ]

    def __eq__(self, other) -> bool:
        return list(self) == list(other)

    def _read(self, i: int) -> Row:
        start = self._ends[i - 1] if i else 0
        self._file.seek(start)
        number, values = _spool_row.decode(self._file.read(self._ends[i] - start))
        return Row(number=number, values=values)


SPOOL_IN_MEMORY = 1024 * 1024
SPOOL_READ = 1000
_spool_json = msgspec.json.Encoder()
_spool_row = msgspec.json.Decoder(tuple[int, dict[str, Any]])


@dataclass
class Sheet:
    columns: list[str]
    rows: RowSpool = field(default_factory=RowSpool)
    skipped_count: int = 0
    """Rows with values but no question; the first MAX_SKIPPED_LISTED are in skipped_rows."""
    skipped_rows: list[dict] = field(default_factory=list)

    def skip(self, number: int, error: str) -> None:
        self.skipped_count += 1
        if len(self.skipped_rows) < MAX_SKIPPED_LISTED:
            self.skipped_rows.append({"row": number, "error": error})

    def summary(self) -> dict:
        """What a dry run reports: items, skipped rows, columns and conversations
        (blank chat_id = a conversation of its own)."""
        groups = Counter(row.values.get(CHAT_ID) or f"row {row.number}" for row in self.rows)
        return {
            "total_items": len(self.rows),
            "skipped_count": self.skipped_count,
            "skipped_rows": list(self.skipped_rows),
            "columns": list(self.columns),
            "chat_groups": len(groups),
            "largest_chat_group": max(groups.values(), default=0),
            "first_rows": [{"row": row.number, **row.values} for row in self.rows[:FIRST_ROWS]],
        }


def column_key(name: str) -> str:
    """A column name as it is matched: lower case, without spaces, underscores or
    hyphens (``Chat ID``, ``chatId`` and ``chat-id`` are all ``chatid``)."""
    return re.sub(r"[\s_-]+", "", name.lower())


@dataclass(frozen=True)
class ColumnNames:
    """How header cells are read: ``known`` maps a matched name (see column_key) to
    a known column; ``aliases`` are the extra names as configured, for messages."""

    known: dict[str, str]
    aliases: dict[str, str]

    def column(self, name: str) -> str:
        return self.known.get(column_key(name), name)

    def question_aliases(self) -> list[str]:
        return [alias for alias, column in self.aliases.items() if column == QUESTION]


def column_names(aliases: Mapping[str, str] | None = None) -> ColumnNames:
    """The known columns and ``aliases`` (alias -> known column). ValueError for an
    alias of something that is not a known column, or one that would take another
    known column's name."""
    known = {column_key(name): name for name in KNOWN_COLUMNS}
    for alias, column in (aliases or {}).items():
        if column not in KNOWN_COLUMNS:
            raise ValueError(
                f"The column alias {alias!r} names {column!r}, which is not one of "
                f"{', '.join(KNOWN_COLUMNS)}."
            )
        key = column_key(alias)
        if known.get(key, column) != column:
            raise ValueError(f"The column alias {alias!r} is already the name of {known[key]!r}.")
        known[key] = column
    return ColumnNames(known=known, aliases=dict(aliases or {}))


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
        raise UploadError(_too_big(max_bytes))
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


def check_zip(
    file,
    *,
    max_bytes: int,
    max_uncompressed: int = MAX_UNCOMPRESSED,
    max_shared_strings: int = MAX_SHARED_STRINGS,
) -> None:
    """Refuse an XLSX that is not a zip, or whose members would inflate too far
    (see the module docstring for the limits). Reads the central directory and
    [Content_Types].xml, no other member."""
    file.seek(0)
    if file.read(4) != ZIP_MAGIC:
        raise UploadError("The file is not a valid XLSX workbook (it is not a zip archive).")
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise UploadError("The XLSX file has too many parts to be a workbook.")
            _check_sizes(members, limit=min(max_uncompressed, MAX_INFLATION * max_bytes))
            _check_shared_strings(archive, limit=max_shared_strings)
    except UploadError:  # a ValueError too
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, ElementTree.ParseError):
        raise UploadError("The XLSX file is corrupt (its zip archive cannot be read).") from None


def _check_sizes(members: list[zipfile.ZipInfo], *, limit: int) -> None:
    total = sum(member.file_size for member in members)
    if total > limit:
        raise UploadError(
            f"The XLSX file would inflate to {total / MiB:,.0f} MiB, more than the "
            f"{limit / MiB:,.0f} MiB a workbook may hold; it is refused as a likely zip bomb."
        )
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        large_xml = member.filename.lower().endswith(".xml") and (
            member.file_size > LARGE_XML_BYTES
        )
        if (member.file_size > RATIO_EXEMPT_BYTES and ratio > MAX_RATIO) or (
            large_xml and ratio > MAX_XML_RATIO
        ):
            raise UploadError(
                f"The XLSX file would inflate to {total / MiB:,.0f} MiB: its part "
                f"{member.filename} deflates {ratio:,.0f}-fold, far more than a workbook's "
                "data does; it is refused as a likely zip bomb."
            )


def _check_shared_strings(archive: zipfile.ZipFile, *, limit: int) -> None:
    """openpyxl reads the whole shared strings part into memory before any row; it
    is the part [Content_Types].xml names, whatever its file name."""
    try:
        types = archive.getinfo(CONTENT_TYPES)
    except KeyError:
        return  # not a workbook; openpyxl says so
    if types.file_size > MAX_CONTENT_TYPES:
        raise UploadError("The XLSX file's list of parts is too large to be a workbook's.")
    root = ElementTree.fromstring(archive.read(types))
    for override in root.iter():
        if override.get("ContentType") != SHARED_STRINGS_TYPE:
            continue
        name = (override.get("PartName") or "").lstrip("/")
        size = next((m.file_size for m in archive.infolist() if m.filename == name), 0)
        if size > limit:
            raise UploadError(
                f"The XLSX file's shared strings would inflate to {size / MiB:,.0f} MiB, "
                f"more than the {limit / MiB:,.0f} MiB a workbook may hold; it is refused "
                "as a likely zip bomb."
            )
