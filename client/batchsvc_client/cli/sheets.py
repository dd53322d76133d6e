"""A batch's failed rows as a file to fix and upload again: the upload's own columns
in its order, values as the server read them, then ``error``. CSV (UTF-8 with a BOM,
as Excel likes), JSON, or XLSX.

The XLSX is written here, a sheet of inline strings in a zip, rather than with a
library: the client depends on httpx and tqdm only. The error column, text from a
processor, is written so that a spreadsheet never reads it as a formula; the row's
own values go back as they were uploaded.
"""

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from typing import IO
from xml.sax.saxutils import escape

CHAT_ID = "chat_id"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
XML_ILLEGAL = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
XLSX_MAX_CELL = 32_767


def failed_rows(batch: dict, items: Iterable[dict]) -> tuple[list[str], Iterator[dict]]:
    """The columns, and a row per failed item of ``batch`` (its fields as the API
    gives them) from ``items`` (its failed interactions)."""
    columns = list(batch["columns"])
    error = "error" if "error" not in columns else "batchsvc_error"

    def rows():
        for item in items:
            values = item.get("input") or {}
            row = {name: values.get(name) for name in columns}
            if CHAT_ID in row:
                row[CHAT_ID] = item.get(CHAT_ID) or values.get(CHAT_ID)
            row[error] = _safe(item.get("error") or "")
            yield row

    return [*columns, error], rows()


def write(format: str, columns: list[str], rows: Iterable[dict], out: IO[bytes]) -> int:
    """Write the rows in ``format`` (csv, json, xlsx) to ``out``; return how many."""
    return {"csv": _csv, "json": _json, "xlsx": _xlsx}[format](columns, rows, out)


def _safe(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _cell(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def _csv(columns, rows, out) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(columns)
    count = 0
    for count, row in enumerate(rows, start=1):  # noqa: B007 (the count is returned)
        writer.writerow([_cell(row[name]) for name in columns])
    text.detach()  # leave ``out`` open for its owner
    return count


def _json(columns, rows, out) -> int:
    listed = [{name: row[name] for name in columns} for row in rows]
    out.write(json.dumps(listed, ensure_ascii=False, indent=2).encode() + b"\n")
    return len(listed)


CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>
</Types>"""  # noqa: E501
ROOT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""  # noqa: E501
WORKBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
<sheets><sheet name="failed rows" sheetId="1" r:id="rId1"/></sheets>
</workbook>"""
WORKBOOK_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>
</Relationships>"""  # noqa: E501
SHEET_START = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"""


def _xlsx(columns, rows, out) -> int:
    count = 0
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(SHEET_START.encode())
            sheet.write(_xlsx_row(1, columns))
            for count, row in enumerate(rows, start=1):
                sheet.write(_xlsx_row(count + 1, [row[name] for name in columns]))
            sheet.write(b"</sheetData></worksheet>")
    return count


def _xlsx_row(number: int, values: list) -> bytes:
    cells = []
    for column, value in enumerate(values):
        where = f"{_column_letters(column)}{number}"
        if isinstance(value, bool):
            cells.append(f'<c r="{where}" t="b"><v>{int(value)}</v></c>')
        elif isinstance(value, int | float):
            cells.append(f'<c r="{where}"><v>{value!r}</v></c>')
        elif value not in (None, ""):  # an empty cell, as the upload's was
            text = escape(_cell(value).translate(XML_ILLEGAL)[:XLSX_MAX_CELL])
            cells.append(
                f'<c r="{where}" t="inlineStr"><is><t xml:space="preserve">{text}</t></is></c>'
            )
    return f'<row r="{number}">{"".join(cells)}</row>'.encode()


def _column_letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters
