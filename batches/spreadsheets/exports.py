"""Write a batch's results as CSV, XLSX or JSON, streamed, whatever the number of rows.

Pure code: rows are plain dicts, ``columns`` says which keys to write and in what
order (a missing key is a blank cell). Spreadsheet formats neutralise formulas:
results hold text from uploads and from models, and a cell such as
``=HYPERLINK("http://evil", "click")`` must stay text when the file is opened in Excel
(OWASP "CSV injection").
"""

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

import msgspec
import xlsxwriter

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The byte order mark makes Excel read the file as UTF-8 rather than the locale's
# code page, so accents and non-Latin scripts survive a double-click.
CSV_BOM = "\ufeff"
CHUNK = 64 * 1024
# Excel refuses to open a workbook with a longer cell.
XLSX_MAX_CELL = 32_767
# Control characters XML 1.0 cannot hold (openpyxl would raise IllegalCharacterError).
XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

_json = msgspec.json.Encoder()


def escape_formula(value):
    """a str starting with = + - @ tab or CR gets a leading "'"; other values unchanged"""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def iter_csv(rows: Iterable[dict], columns: list[str]) -> Iterator[bytes]:
    """CSV as UTF-8 with a BOM, header first, in chunks of about 64 KiB."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write(CSV_BOM)
    writer.writerow([escape_formula(name) for name in columns])
    for row in rows:
        writer.writerow([_csv_cell(row.get(name)) for name in columns])
        if buffer.tell() >= CHUNK:
            yield _drain(buffer)
    yield _drain(buffer)


def write_xlsx(rows: Iterable[dict], columns: list[str], out) -> None:
    """An XLSX workbook with one sheet, written row by row. XlsxWriter's
    constant-memory mode flushes each row as it is written and keeps strings in
    their cells (no shared-strings table growing with the rows); it writes in
    half the time openpyxl's write-only mode takes. Text is always written as
    text: never read as a formula, a number or a link. ``out`` is a path or a
    binary file."""
    workbook = xlsxwriter.Workbook(
        out,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_numbers": False,
            "strings_to_urls": False,
        },
    )
    sheet = workbook.add_worksheet("Results")
    write_row = partial(_write_row, sheet, workbook.add_format({"num_format": XLSX_DATE}))
    write_row(0, [_xlsx_cell(name) for name in columns])
    for number, row in enumerate(rows, start=1):
        write_row(number, [_xlsx_cell(row.get(name)) for name in columns])
    workbook.close()


XLSX_DATE = "yyyy-mm-dd h:mm:ss"  # openpyxl's, which the exports used before


def _write_row(sheet, dates, number: int, cells: list) -> None:
    for column, value in enumerate(cells):
        if value is None or value == "":
            continue  # a blank cell is one not written
        if isinstance(value, str):
            sheet.write_string(number, column, value)
        elif isinstance(value, dt.date | dt.time):
            sheet.write_datetime(number, column, value, dates)
        else:
            sheet.write(number, column, value)


def iter_json(rows: Iterable[dict]) -> Iterator[bytes]:
    """A JSON array of the rows, in chunks of about 64 KiB."""
    chunk = bytearray(b"[")
    separator = b""
    for row in rows:
        chunk += separator
        chunk += _json.encode(row)
        separator = b","
        if len(chunk) >= CHUNK:
            yield bytes(chunk)
            chunk.clear()
    chunk += b"]"
    yield bytes(chunk)


def _drain(buffer: io.StringIO) -> bytes:
    data = buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    return data


def _plain(value: Any):
    """Nested values (an output's extra fields) become JSON text in one cell."""
    if isinstance(value, dict | list | tuple):
        return _json.encode(value).decode()
    return value


def _csv_cell(value: Any):
    return escape_formula(_plain(value))


def _xlsx_cell(value: Any):
    value = _plain(value)
    if hasattr(value, "tzinfo") and value.tzinfo is not None:
        value = value.isoformat()  # Excel has no time zones; keep the offset as text
    if isinstance(value, str):
        # Escape after removing characters, which could uncover a leading "=".
        return escape_formula(XLSX_ILLEGAL.sub("", value))[:XLSX_MAX_CELL]
    return value
