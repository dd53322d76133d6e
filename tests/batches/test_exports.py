"""batches.spreadsheets.exports: files read back with the csv module, openpyxl and json."""

import csv
import datetime
import io
import json
import subprocess
import sys
import zipfile

import openpyxl
import pytest

from batches.spreadsheets.exports import escape_formula, iter_csv, iter_json, write_xlsx
from batches.spreadsheets.reading import read_upload

COLUMNS = ["row_number", "chat_id", "question", "text", "status", "error"]
DANGEROUS = ["=1+1", "+41 22", "-2", "@SUM(A1)", "\tindented", "\rreturn"]


def result(number: int, **values) -> dict:
    row = {
        "row_number": number,
        "chat_id": "c1",
        "question": f"Question {number}?",
        "text": f"Answer {number}",
        "status": "succeeded",
        "error": None,
    }
    return {**row, **values}


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def xlsx_values(rows, columns=COLUMNS) -> list[tuple]:
    buffer = io.BytesIO()
    write_xlsx(rows, columns, buffer)
    buffer.seek(0)
    return list(openpyxl.load_workbook(buffer).active.values)


def counted(rows: list[dict], consumed: list):
    for row in rows:
        consumed.append(row)
        yield row


# Formula escaping ---------------------------------------------------------------


@pytest.mark.parametrize("value", DANGEROUS)
def test_a_string_starting_like_a_formula_gets_a_leading_quote(value):
    assert escape_formula(value) == "'" + value


@pytest.mark.parametrize("value", ["plain", "", "a=b", " =1", "'=1", 5, -2, 1.5, None, True])
def test_other_values_are_left_unchanged(value):
    assert escape_formula(value) is value


# CSV ---------------------------------------------------------------------------


def test_the_csv_starts_with_a_byte_order_mark_and_the_header():
    data = b"".join(iter_csv([result(2)], COLUMNS))
    assert data.startswith(b"\xef\xbb\xbfrow_number,chat_id,question,text,status,error\r\n")


def test_the_csv_round_trips_text_numbers_and_blanks():
    rows = [result(2, text="Réponse, avec virgule\net ligne"), result(3, error="timed out")]
    assert csv_rows(b"".join(iter_csv(rows, COLUMNS))) == [
        COLUMNS,
        ["2", "c1", "Question 2?", "Réponse, avec virgule\net ligne", "succeeded", ""],
        ["3", "c1", "Question 3?", "Answer 3", "succeeded", "timed out"],
    ]


def test_the_csv_escapes_formulas_in_every_string_cell_but_not_numbers():
    rows = [result(2, question=value, text=value, row_number=-2) for value in DANGEROUS]
    for line, value in zip(csv_rows(b"".join(iter_csv(rows, COLUMNS)))[1:], DANGEROUS, strict=True):
        assert line[0] == "-2"
        assert line[2] == line[3] == "'" + value


def test_the_csv_escapes_a_formula_in_a_column_name():
    assert csv_rows(b"".join(iter_csv([], ["question", "=cmd"])))[0] == ["question", "'=cmd"]


def test_the_csv_writes_nested_values_as_json_and_missing_keys_as_blank():
    data = b"".join(iter_csv([{"text": "a", "usage": {"tokens": 3}}], ["text", "usage", "x"]))
    assert csv_rows(data)[1] == ["a", '{"tokens":3}', ""]


def test_the_csv_is_streamed_in_chunks_before_all_rows_are_read():
    consumed = []
    chunks = iter_csv(counted([result(n) for n in range(20_000)], consumed), COLUMNS)
    next(chunks)
    assert 0 < len(consumed) < 20_000
    assert len(list(chunks)) > 5


def test_an_exported_csv_reads_back_as_an_upload():
    rows = [result(2, question="Où ?", chat_id="a"), result(3, question="Why?", chat_id="")]
    data = b"".join(iter_csv(rows, ["question", "chat_id", "text"]))
    sheet = read_upload(io.BytesIO(data), filename="r.csv", max_rows=10, max_bytes=10_000)
    assert [row.values for row in sheet.rows] == [
        {"question": "Où ?", "chat_id": "a", "text": "Answer 2"},
        {"question": "Why?", "chat_id": "", "text": "Answer 3"},
    ]


# XLSX --------------------------------------------------------------------------


def test_the_xlsx_round_trips_types():
    when = datetime.datetime(2024, 5, 1, 9, 30)
    rows = [{"n": 2, "score": 0.5, "ok": True, "text": "Réponse", "none": None, "when": when}]
    columns = ["n", "score", "ok", "text", "none", "when"]
    assert xlsx_values(rows, columns) == [tuple(columns), (2, 0.5, True, "Réponse", None, when)]


def test_the_xlsx_escapes_formulas_so_they_stay_text():
    rows = [result(2, question=value, text=value) for value in DANGEROUS]
    for line, value in zip(xlsx_values(rows)[1:], DANGEROUS, strict=True):
        # A carriage return is written as OOXML's escape, which Excel reads as one
        # (openpyxl leaves it as it is).
        assert line[2] == line[3] == "'" + value.replace("\r", "_x000D_")


def test_the_xlsx_holds_no_formula_cell():
    buffer = io.BytesIO()
    write_xlsx([result(2, text='=HYPERLINK("http://evil.test")')], COLUMNS, buffer)
    buffer.seek(0)
    cells = [cell for row in openpyxl.load_workbook(buffer).active.iter_rows() for cell in row]
    assert all(cell.data_type != "f" for cell in cells)


def test_the_xlsx_drops_characters_xml_cannot_hold_then_escapes():
    assert xlsx_values([{"text": "\x00=1+1\x07 ok"}], ["text"])[1] == ("'=1+1 ok",)


def test_the_xlsx_cuts_text_at_excels_cell_limit():
    assert len(xlsx_values([{"text": "x" * 40_000}], ["text"])[1][0]) == 32_767


def test_the_xlsx_writes_nested_values_as_json_and_aware_datetimes_as_text():
    when = datetime.datetime(2024, 5, 1, 9, 30, tzinfo=datetime.UTC)
    assert xlsx_values([{"usage": {"tokens": 3}, "at": when}], ["usage", "at"])[1] == (
        '{"tokens":3}',
        "2024-05-01T09:30:00+00:00",
    )


def test_the_xlsx_can_be_written_to_a_path(tmp_path):
    path = tmp_path / "results.xlsx"
    write_xlsx([result(2)], COLUMNS, str(path))
    assert list(openpyxl.load_workbook(path).active.values)[1][2] == "Question 2?"


def test_the_xlsx_can_be_written_to_a_stream_that_cannot_seek():
    class Sink:
        def __init__(self):
            self.parts = []

        def write(self, data):
            self.parts.append(bytes(data))
            return len(data)

        def flush(self):
            pass

    sink = Sink()
    write_xlsx([result(2)], COLUMNS, sink)
    workbook = openpyxl.load_workbook(io.BytesIO(b"".join(sink.parts)))
    assert list(workbook.active.values)[1][2] == "Question 2?"


def test_an_exported_xlsx_reads_back_as_an_upload():
    buffer = io.BytesIO()
    write_xlsx([result(2), result(3, chat_id="")], ["question", "chat_id", "text"], buffer)
    buffer.seek(0)
    sheet = read_upload(buffer, filename="r.xlsx", max_rows=10, max_bytes=100_000)
    assert [row.values for row in sheet.rows] == [
        {"question": "Question 2?", "chat_id": "c1", "text": "Answer 2"},
        {"question": "Question 3?", "chat_id": "", "text": "Answer 3"},
    ]


# Run in a fresh interpreter so that the peak resident memory it reports is this
# export's alone. (tracemalloc would measure only Python objects, not zlib's buffers,
# and makes this export six times slower.)
EXPORT_100K = """
import json, resource, sys
from batches.spreadsheets.exports import write_xlsx
COLUMNS = json.loads(sys.argv[2])
TEXT = "An answer of a realistic length, about a hundred characters, to the question. " * 2

def rows():
    for number in range(2, 100_002):
        yield {"row_number": number, "chat_id": f"c{number // 7}", "question": f"Q{number}?",
               "text": f"{number} {TEXT}", "status": "succeeded", "error": None}

before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
write_xlsx(rows(), COLUMNS, sys.argv[1])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_a_100000_row_xlsx_export_stays_within_bounded_memory(tmp_path):
    path = tmp_path / "big.xlsx"
    done = subprocess.run(
        [sys.executable, "-c", EXPORT_100K, str(path), json.dumps(COLUMNS)],
        capture_output=True,
        text=True,
        check=True,
    )
    growth_kib = int(done.stdout)
    # Holding the cells would take well over 100 MB: 600,000 cell objects, and a
    # 17 MB answer column on its own.
    assert growth_kib < 50 * 1024
    with zipfile.ZipFile(path) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml")
    assert xml.count(b"<row ") == 100_001
    assert b"<t>Q100001?</t>" in xml[-2000:]


# JSON --------------------------------------------------------------------------


def test_the_json_export_is_an_array_of_the_rows():
    rows = [result(2, text="Réponse"), {"usage": {"tokens": 3}, "at": datetime.date(2024, 5, 1)}]
    expected = [result(2, text="Réponse"), {"usage": {"tokens": 3}, "at": "2024-05-01"}]
    assert json.loads(b"".join(iter_json(rows))) == expected


def test_the_json_export_of_no_rows_is_an_empty_array():
    assert b"".join(iter_json([])) == b"[]"


def test_the_json_export_does_not_escape_formulas():
    assert json.loads(b"".join(iter_json([{"text": "=1+1"}]))) == [{"text": "=1+1"}]


def test_the_json_export_is_streamed_in_chunks_before_all_rows_are_read():
    consumed = []
    chunks = iter_json(counted([result(n) for n in range(20_000)], consumed))
    first = next(chunks)
    assert 0 < len(consumed) < 20_000
    assert json.loads(first + b"".join(chunks))[-1]["row_number"] == 19_999
