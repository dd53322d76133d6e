"""batches.spreadsheets: real CSV and XLSX files, built here, read without a database."""

import datetime
import io
import os
import random
import zipfile

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from openpyxl.worksheet._read_only import ReadOnlyWorksheet

from batches.spreadsheets import reading, zipguard
from batches.spreadsheets.columns import column_names
from batches.spreadsheets.reading import read_upload
from batches.spreadsheets.rows import MAX_SKIPPED_LISTED, Row, UploadError

MiB = 1024 * 1024


def read(data: bytes, filename="questions.csv", *, max_rows=1000, max_bytes=10 * MiB):
    return read_upload(io.BytesIO(data), filename=filename, max_rows=max_rows, max_bytes=max_bytes)


def xlsx_bytes(rows, *, title=None, extra_sheets=()) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    if title:
        sheet.title = title
    for row in rows:
        sheet.append(row)
    for name in extra_sheets:
        workbook.create_sheet(name).append(["question"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def refusal(data: bytes, filename="questions.csv", **limits) -> str:
    with pytest.raises(UploadError) as caught:
        read(data, filename, **limits)
    return str(caught.value)


class Unseekable:
    """A stream that can only be read forwards, counting what was read."""

    def __init__(self, data: bytes):
        self._stream = io.BytesIO(data)
        self.bytes_read = 0

    def read(self, size=-1):
        data = self._stream.read(size)
        self.bytes_read += len(data)
        return data


# CSV ---------------------------------------------------------------------------


def test_it_reads_a_csv_with_normalised_known_columns_and_other_columns_as_written():
    sheet = read(b" Question ,CHAT_ID,Url, Language \nHi?,c1,https://x.test/a,fr\n")
    assert sheet.columns == ["question", "chat_id", "url", "Language"]
    assert sheet.rows == [
        Row(
            number=2,
            values={
                "question": "Hi?",
                "chat_id": "c1",
                "url": "https://x.test/a",
                "Language": "fr",
            },
        )
    ]


def test_it_reads_utf8_with_and_without_a_byte_order_mark():
    text = "question\nQuelle université ?\n"
    for data in (text.encode(), "\ufeff".encode() + text.encode()):
        sheet = read(data)
        assert sheet.columns == ["question"]
        assert sheet.rows[0].values["question"] == "Quelle université ?"


def test_it_skips_empty_rows_and_keeps_the_row_numbers_of_the_file():
    sheet = read(b"question,chat_id\nfirst,\n,\n   ,  \n\nsecond,a\n")
    assert [(row.number, row.values["question"]) for row in sheet.rows] == [
        (2, "first"),
        (6, "second"),
    ]


def test_a_quoted_cell_over_several_lines_counts_as_one_row():
    sheet = read(b'question,notes\n"one\nquestion",x\nnext,y\n')
    assert [(row.number, row.values["question"]) for row in sheet.rows] == [
        (2, "one\nquestion"),
        (3, "next"),
    ]


def test_blank_optional_cells_are_empty_text_for_known_columns_and_none_for_others():
    sheet = read(b"question,chat_id,url,extra\nq,,,\n")
    assert sheet.rows[0].values == {"question": "q", "chat_id": "", "url": "", "extra": None}


def test_a_short_row_leaves_the_missing_columns_blank():
    sheet = read(b"question,chat_id,extra\nq\n")
    assert sheet.rows[0].values == {"question": "q", "chat_id": "", "extra": None}


def test_it_reads_a_semicolon_separated_csv_as_excel_writes_it_in_many_locales():
    sheet = read(b"question;chat_id\nBonjour, ca va ?;7\n")
    assert sheet.rows[0].values == {"question": "Bonjour, ca va ?", "chat_id": "7"}


def test_it_skips_a_row_with_values_but_no_question_and_reports_its_row():
    sheet = read(b"question,chat_id\nok,1\n,2\nnext,3\n")
    assert [row.number for row in sheet.rows] == [2, 4]
    assert (sheet.skipped_count, sheet.skipped_rows) == (1, [{"row": 3, "error": "no question"}])


def test_it_lists_the_first_hundred_skipped_rows_and_counts_them_all():
    data = b"question,chat_id\nok,1\n" + b",x\n" * 250
    sheet = read(data)
    assert sheet.skipped_count == 250
    assert len(sheet.skipped_rows) == MAX_SKIPPED_LISTED == 100
    assert sheet.skipped_rows[-1] == {"row": 102, "error": "no question"}


def test_it_refuses_a_file_where_no_row_has_a_question_naming_the_first():
    message = refusal(b"question,chat_id\n,1\n,2\n")
    assert message == (
        "None of the file's 2 rows has a question (the first is row 2); "
        "fill in the question column."
    )


def test_skipped_rows_count_against_the_row_limit():
    assert "more than 3 rows" in refusal(b"question,chat_id\nq,1\n,2\n,3\nq,4\n", max_rows=3)


@pytest.mark.parametrize(
    ("header", "columns"),
    [
        ("question,chat_id,url", ["question", "chat_id", "url"]),
        ("Question,chatId,URL", ["question", "chat_id", "url"]),
        ("QUESTION,Chat ID,Url", ["question", "chat_id", "url"]),
        ("question,chat-id,url", ["question", "chat_id", "url"]),
        (" Ques_tion ,CHAT__ID, U-R-L ", ["question", "chat_id", "url"]),
    ],
)
def test_known_columns_match_ignoring_case_spaces_underscores_and_hyphens(header, columns):
    sheet = read(header.encode() + b"\nHi?,c1,https://x.test\n")
    assert sheet.columns == columns
    assert sheet.rows[0].values == {"question": "Hi?", "chat_id": "c1", "url": "https://x.test"}


def test_other_columns_keep_the_name_they_were_written_with():
    assert read(b"question,Chat Room\nq,a\n").columns == ["question", "Chat Room"]


def test_the_seed_spreadsheet_columns_are_read_with_the_default_alias():
    data = b"REDACTEDQUESTION,chatId,URL\nFirst?,c1,https://x.test/a\nSecond?,c1,\n"
    sheet = read_upload(
        io.BytesIO(data),
        filename="seed.csv",
        max_rows=10,
        max_bytes=MiB,
        aliases={"REDACTEDQUESTION": "question"},
    )
    assert sheet.columns == ["question", "chat_id", "url"]
    assert [row.values["chat_id"] for row in sheet.rows] == ["c1", "c1"]
    assert sheet.summary()["chat_groups"] == 1


def test_an_alias_matches_like_a_known_column_and_finds_the_csv_delimiter():
    sheet = read_upload(
        io.BytesIO(b"Redacted Question;Chat ID\nBonjour, ca va ?;7\n"),
        filename="q.csv",
        max_rows=10,
        max_bytes=MiB,
        aliases={"REDACTEDQUESTION": "question"},
    )
    assert sheet.rows[0].values == {"question": "Bonjour, ca va ?", "chat_id": "7"}


def test_the_missing_question_column_message_names_its_aliases():
    with pytest.raises(UploadError) as caught:
        read_upload(
            io.BytesIO(b"prompt\nhi\n"),
            filename="q.csv",
            max_rows=10,
            max_bytes=MiB,
            aliases={"REDACTEDQUESTION": "question"},
        )
    assert str(caught.value) == (
        "The file has no 'question' column (nor REDACTEDQUESTION); the header (row 1) has: prompt."
    )


def test_a_column_and_its_alias_or_two_spellings_of_one_column_are_refused():
    assert refusal(b"question,chat_id,Chat ID\na,b,c\n") == (
        "The header has the column 'chat_id' twice: as 'chat_id' and as 'Chat ID'."
    )
    with pytest.raises(UploadError, match="twice: as 'question' and as 'REDACTEDQUESTION'"):
        read_upload(
            io.BytesIO(b"question,REDACTEDQUESTION\na,b\n"),
            filename="q.csv",
            max_rows=10,
            max_bytes=MiB,
            aliases={"REDACTEDQUESTION": "question"},
        )


@pytest.mark.parametrize(
    ("aliases", "says"),
    [
        ({"prompt": "answer"}, "names 'answer', which is not one of question, chat_id, url"),
        ({"Chat-Id": "question"}, "is already the name of 'chat_id'"),
    ],
)
def test_an_alias_of_an_unknown_column_or_of_another_known_name_is_refused(aliases, says):
    with pytest.raises(ValueError, match=says):
        column_names(aliases)


def test_it_refuses_a_file_without_a_question_column_listing_the_columns_found():
    message = refusal(b"prompt,chat_id\nhello,1\n")
    assert "no 'question' column" in message
    assert "prompt, chat_id" in message


def test_it_refuses_a_header_naming_a_column_twice():
    assert "twice" in refusal(b"question,Question\na,b\n")


def test_it_refuses_a_header_with_a_nameless_column_before_named_ones():
    assert refusal(b"question,,extra\na,b,c\n") == "Column 2 of the header (row 1) has no name."


def test_it_refuses_a_row_with_more_values_than_columns():
    assert refusal(b"question\na,b\n") == "Row 2 has more values than the header has columns."


def test_it_refuses_a_file_with_a_header_and_no_rows():
    assert "no rows" in refusal(b"question,chat_id\n\n,\n")


def test_it_refuses_an_empty_file():
    assert refusal(b"") == "The file is empty."


def test_it_refuses_a_file_of_blank_lines():
    assert "no header" in refusal(b"\n\n\n")


def test_it_refuses_a_csv_that_is_not_utf8():
    message = refusal("question\nQuelle université ?\n".encode("latin-1"))
    assert message == "The CSV file is not UTF-8 text; save it as CSV UTF-8."


def test_it_refuses_a_utf16_csv_as_excel_writes_unicode_text():
    assert "UTF-16" in refusal("question\nhello\n".encode("utf-16"))


def test_it_refuses_a_binary_file_named_csv():
    assert refusal(b"question\n\x00\x01\x02\xff" * 10) == "The file is binary, not CSV text."


def test_it_refuses_a_workbook_named_csv():
    assert "not a CSV" in refusal(xlsx_bytes([["question"], ["q"]]), "questions.csv")


def test_it_refuses_a_cell_longer_than_the_csv_module_accepts():
    message = refusal(b"question\n" + b"x" * 200_000 + b"\n")
    assert message.startswith("The CSV file could not be read near line 2")


@pytest.mark.parametrize("filename", ["questions.txt", "questions.xls", "questions", "csv"])
def test_it_refuses_other_file_types_by_name(filename):
    assert ".csv or .xlsx" in refusal(b"question\nq\n", filename)


def test_it_accepts_the_extension_in_any_case():
    assert read(b"question\nq\n", "QUESTIONS.CSV").rows[0].values["question"] == "q"


def test_it_refuses_more_rows_than_the_limit_without_reading_the_rest_of_the_file():
    data = b"question\n" + b"".join(b"question number %06d\n" % i for i in range(50_000))
    stream = Unseekable(data)
    with pytest.raises(UploadError, match="more than 10 rows"):
        read_upload(stream, filename="q.csv", max_rows=10, max_bytes=10 * MiB)
    assert stream.bytes_read < len(data) / 5


def test_it_accepts_exactly_the_row_limit():
    data = b"question\n" + b"".join(b"q%d\n" % i for i in range(10))
    assert len(read(data, max_rows=10).rows) == 10


def test_it_refuses_more_empty_rows_than_the_row_limit():
    assert "more than 10 empty rows" in refusal(b"question\n" + b",\n" * 11 + b"q\n", max_rows=10)


def test_it_refuses_a_file_larger_than_the_byte_limit_from_its_size():
    assert refusal(b"question\n" + b"q\n" * 1000, max_bytes=1000).startswith(
        "The file is larger than"
    )


def test_it_refuses_a_stream_of_unknown_size_once_it_reads_past_the_byte_limit():
    stream = Unseekable(b"question\n" + b"a question\n" * 100_000)
    with pytest.raises(UploadError, match="larger than"):
        read_upload(stream, filename="q.csv", max_rows=1_000_000, max_bytes=MiB // 2)
    assert stream.bytes_read <= MiB // 2 + 64 * 1024


def test_it_reads_a_django_uploaded_file():
    upload = SimpleUploadedFile("q.csv", b"question,chat_id\nhello,1\n", "text/csv")
    sheet = read_upload(upload, filename=upload.name, max_rows=10, max_bytes=MiB)
    assert sheet.rows[0].values == {"question": "hello", "chat_id": "1"}


# Summary -------------------------------------------------------------------------


def test_the_summary_counts_items_columns_and_conversations_blank_chat_id_alone():
    sheet = read(b"question,chat_id,Topic\na,c1,\nb,c1,\nc,,\nd,c2,\ne,,\nf,c1,\n,c1,x\n")
    assert sheet.summary() == {
        "total_items": 6,
        "skipped_count": 1,
        "skipped_rows": [{"row": 8, "error": "no question"}],
        "columns": ["question", "chat_id", "Topic"],
        "chat_groups": 4,  # c1, c2 and two rows without a chat id
        "largest_chat_group": 3,
        "first_rows": [
            {"row": 2, "question": "a", "chat_id": "c1", "Topic": None},
            {"row": 3, "question": "b", "chat_id": "c1", "Topic": None},
            {"row": 4, "question": "c", "chat_id": "", "Topic": None},
            {"row": 5, "question": "d", "chat_id": "c2", "Topic": None},
            {"row": 6, "question": "e", "chat_id": "", "Topic": None},
        ],
    }


def test_the_summary_without_a_chat_id_column_makes_each_row_a_conversation():
    summary = read(b"question\na\nb\n").summary()
    assert (summary["chat_groups"], summary["largest_chat_group"]) == (2, 1)


# XLSX --------------------------------------------------------------------------


def test_it_reads_an_xlsx_with_json_ready_values():
    data = xlsx_bytes(
        [
            [" QUESTION", "Chat_Id", "when", "score", "ok"],
            ["What?", 7, datetime.datetime(2024, 5, 1, 9, 30), 2.5, True],
            [42, 7.0, datetime.date(2024, 5, 2), None, False],
        ]
    )
    sheet = read(data, "questions.xlsx")
    assert sheet.columns == ["question", "chat_id", "when", "score", "ok"]
    assert [row.values for row in sheet.rows] == [
        {
            "question": "What?",
            "chat_id": "7",
            "when": "2024-05-01T09:30:00",
            "score": 2.5,
            "ok": True,
        },
        {
            "question": "42",
            "chat_id": "7",
            "when": "2024-05-02T00:00:00",
            "score": None,
            "ok": False,
        },
    ]


def test_it_skips_empty_xlsx_rows_and_numbers_rows_as_excel_does():
    data = xlsx_bytes([["question"], ["first"], [None], [], ["  "], ["second"]])
    sheet = read(data, "q.xlsx")
    assert [(row.number, row.values["question"]) for row in sheet.rows] == [
        (2, "first"),
        (6, "second"),
    ]


def test_it_reads_the_first_worksheet_of_a_workbook():
    data = xlsx_bytes([["question"], ["from the first"]], title="Questions", extra_sheets=["B"])
    assert read(data, "q.xlsx").rows[0].values["question"] == "from the first"


def test_it_skips_an_xlsx_row_without_a_question():
    sheet = read(xlsx_bytes([["question", "x"], ["q", 1], [None, 2], ["  ", 3]]), "q.xlsx")
    assert [row.number for row in sheet.rows] == [2]
    assert sheet.skipped_rows == [
        {"row": 3, "error": "no question"},
        {"row": 4, "error": "no question"},
    ]


def test_it_refuses_an_xlsx_without_a_question_column():
    assert "no 'question' column" in refusal(xlsx_bytes([["prompt"], ["hi"]]), "q.xlsx")


def test_it_refuses_a_text_file_named_xlsx():
    assert "not a zip archive" in refusal(b"question\nhello\n", "q.xlsx")


def test_it_refuses_a_truncated_xlsx():
    data = xlsx_bytes([["question"], ["q"]])
    assert "corrupt" in refusal(data[: len(data) // 2], "q.xlsx")


def test_it_refuses_a_zip_that_is_not_a_workbook():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "not a workbook")
    assert refusal(buffer.getvalue(), "q.xlsx") == (
        "The XLSX file is corrupt or is not an Excel workbook."
    )


def with_sheet_xml(content: bytes) -> bytes:
    """A real workbook whose first sheet's XML is replaced by ``content``."""
    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(xlsx_bytes([["question"], ["q"]]))) as src,
        zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for item in src.infolist():
            is_sheet = item.filename == "xl/worksheets/sheet1.xml"
            dst.writestr(item.filename, content if is_sheet else src.read(item))
    return buffer.getvalue()


def test_it_refuses_a_workbook_whose_sheet_is_not_xml():
    assert "corrupt" in refusal(with_sheet_xml(b"<worksheet><sheetData><row><c"), "q.xlsx")


def test_it_refuses_a_sheet_with_an_xml_entity_bomb():
    # "Billion laughs": nine levels of ten references expand to 10^9 "lol"s.
    entities = b'<!ENTITY lol0 "lol">' + b"".join(
        b'<!ENTITY lol%d "%s">' % (level, b"&lol%d;" % (level - 1) * 10) for level in range(1, 10)
    )
    sheet = (
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>question</t></is></c></row>'
        b'<row r="2"><c r="A2" t="inlineStr"><is><t>&lol9;</t></is></c></row>'
        b"</sheetData></worksheet>"
    )
    bomb = b'<?xml version="1.0"?><!DOCTYPE worksheet [' + entities + b"]>" + sheet
    assert "corrupt" in refusal(with_sheet_xml(bomb), "q.xlsx")
    harmless = sheet.replace(b"&lol9;", b"lol")
    assert read(with_sheet_xml(harmless), "q.xlsx").rows[0].values == {"question": "lol"}


def test_it_stops_reading_an_xlsx_at_the_row_limit(monkeypatch):
    parsed = []
    original = ReadOnlyWorksheet._get_row

    def counting(self, row, *args, **kwargs):
        parsed.append(row)
        return original(self, row, *args, **kwargs)

    monkeypatch.setattr(ReadOnlyWorksheet, "_get_row", counting)
    data = xlsx_bytes([["question"], *([f"q{i}"] for i in range(5000))])
    assert "more than 10 rows" in refusal(data, "q.xlsx", max_rows=10)
    assert len(parsed) == 12  # the header, ten rows and the one past the limit


def test_it_reads_an_xlsx_upload_spooled_to_a_temporary_file():
    data = xlsx_bytes([["question"], ["q"]])
    upload = TemporaryUploadedFile("q.xlsx", "application/octet-stream", len(data), None)
    upload.write(data)
    upload.seek(0)
    sheet = read_upload(upload, filename=upload.name, max_rows=10, max_bytes=MiB)
    assert sheet.rows[0].values["question"] == "q"
    upload.close()


def test_it_reads_an_xlsx_from_a_stream_that_cannot_seek():
    stream = Unseekable(xlsx_bytes([["question"], ["q"]]))
    sheet = read_upload(stream, filename="q.xlsx", max_rows=10, max_bytes=MiB)
    assert sheet.rows[0].values["question"] == "q"


def test_it_refuses_an_unseekable_xlsx_stream_past_the_byte_limit():
    stream = Unseekable(xlsx_bytes([["question"], *([f"question {i}"] for i in range(2000))]))
    with pytest.raises(UploadError, match="larger than"):
        read_upload(stream, filename="q.xlsx", max_rows=10_000, max_bytes=10_000)


def test_a_realistic_repetitive_workbook_passes_the_zip_checks():
    # Every row alike compresses best; it must still not look like a bomb.
    data = xlsx_bytes([["question", "chat_id"], *(["Same question?", "c"] for _ in range(20_000))])
    assert len(read(data, "q.xlsx", max_rows=20_000, max_bytes=len(data)).rows) == 20_000


# Zip bombs -----------------------------------------------------------------------

SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    b'<row><c t="inlineStr"><is><t>question</t></is></c></row>'
)
SHEET_ROW = b'<row><c t="inlineStr"><is><t>Is this a bomb?</t></is></c></row>'
SHEET_TAIL = b"</sheetData></worksheet>"


def write_workbook_with_sheet(path, *, rows: int = 0, chunks=()) -> None:
    """A real workbook whose first sheet holds ``rows`` identical rows (then the XML
    ``chunks``), streamed into the archive chunk by chunk so that hundreds of MB are
    never held in memory."""
    template = xlsx_bytes([["question"]])
    with (
        zipfile.ZipFile(io.BytesIO(template)) as src,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for item in src.infolist():
            if item.filename != "xl/worksheets/sheet1.xml":
                dst.writestr(item, src.read(item))
        with dst.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(SHEET_HEAD)
            for _ in range(rows // 10_000):
                sheet.write(SHEET_ROW * 10_000)
            sheet.write(SHEET_ROW * (rows % 10_000))
            for chunk in chunks:
                sheet.write(chunk)
            sheet.write(SHEET_TAIL)


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory):
    path = tmp_path_factory.mktemp("bomb") / "bomb.xlsx"
    write_workbook_with_sheet(path, rows=5_000_000)  # about 300 MB of sheet XML
    return path


@pytest.fixture
def openpyxl_calls(monkeypatch):
    calls = []
    original = reading.load_workbook

    def spy(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(reading, "load_workbook", spy)
    return calls


def test_the_bomb_is_small_and_inflates_to_hundreds_of_megabytes(zip_bomb):
    with zipfile.ZipFile(zip_bomb) as archive:
        sheet = archive.getinfo("xl/worksheets/sheet1.xml")
    assert sheet.file_size > 250 * MiB
    assert zip_bomb.stat().st_size < 2 * MiB


def test_it_refuses_a_zip_bomb_before_openpyxl_opens_it(zip_bomb, openpyxl_calls):
    with open(zip_bomb, "rb") as file, pytest.raises(UploadError) as caught:
        read_upload(file, filename="bomb.xlsx", max_rows=100_000, max_bytes=50 * MiB)
    assert "zip bomb" in str(caught.value)
    assert openpyxl_calls == []


def test_the_same_workbook_with_a_few_rows_is_read(tmp_path, openpyxl_calls):
    # Proves the bomb is a valid workbook, refused for its size and nothing else.
    path = tmp_path / "small.xlsx"
    write_workbook_with_sheet(path, rows=3)
    with open(path, "rb") as file:
        sheet = read_upload(file, filename="small.xlsx", max_rows=10, max_bytes=MiB)
    assert [row.values["question"] for row in sheet.rows] == ["Is this a bomb?"] * 3
    assert len(openpyxl_calls) == 1


def test_it_refuses_a_sheet_that_inflates_ninety_times_like_the_slow_file_of_the_issue(
    tmp_path, openpyxl_calls
):
    # 1 MiB cells padded with 8 KB of random text: ratio about 90, not a 1000x bomb.
    cells = (
        b'<row><c t="inlineStr"><is><t>%s%s</t></is></c></row>'
        % (os.urandom(8000).hex().encode(), b"a" * MiB)
        for _ in range(30)
    )
    path = tmp_path / "slow.xlsx"
    write_workbook_with_sheet(path, chunks=cells)
    with zipfile.ZipFile(path) as archive:
        sheet = archive.getinfo("xl/worksheets/sheet1.xml")
    assert 80 < sheet.file_size / sheet.compress_size < 100
    with open(path, "rb") as file, pytest.raises(UploadError, match="zip bomb"):
        read_upload(file, filename="slow.xlsx", max_rows=100_000, max_bytes=50 * MiB)
    assert openpyxl_calls == []


def test_it_refuses_many_small_members_that_inflate_too_far_together(openpyxl_calls):
    # Each member is below the size where its ratio is checked; their total is not.
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", zipfile.ZIP_DEFLATED) as archive:
        for number in range(30):
            archive.writestr(f"xl/media/part{number}.bin", bytes(MiB - 1))
    message = refusal(data.getvalue(), "q.xlsx", max_bytes=MiB)
    assert "would inflate to 30 MiB" in message
    assert openpyxl_calls == []


def test_it_refuses_an_archive_with_too_many_members(openpyxl_calls):
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        for number in range(zipguard.MAX_ZIP_MEMBERS + 1):
            archive.writestr(f"p{number}", b"")
    assert "too many parts" in refusal(data.getvalue(), "q.xlsx")
    assert openpyxl_calls == []


# Shared strings and the absolute inflation limit -----------------------------------

SHARED_STRINGS_TYPE = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
)


def shared_strings_chunk(*, random_share: float, size: int = MiB) -> bytes:
    """About ``size`` bytes of <si> entries, ``random_share`` of them random text and
    the rest alike: 0.065 deflates about 45-fold, under the 50 of the old limit."""
    chooser = random.Random(1)
    entries = []
    while len(entries) * 24 < size:  # each entry is 24 bytes
        text = f"{chooser.getrandbits(32):08x}" if chooser.random() < random_share else "a" * 8
        entries.append(f"<si><t>{text}</t></si>")
    return "".join(entries).encode()


def write_workbook_with_shared_strings(
    path, *, chunk: bytes, times: int, part: str = "xl/sharedStrings.xml"
) -> None:
    """A real workbook (one row, "Is this a bomb?") plus a shared strings part made of
    ``chunk`` repeated ``times`` times, streamed into the archive."""
    template = xlsx_bytes([["question"], ["Is this a bomb?"]])
    with (
        zipfile.ZipFile(io.BytesIO(template)) as src,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "[Content_Types].xml":
                override = f'<Override PartName="/{part}" ContentType="{SHARED_STRINGS_TYPE}"/>'
                data = data.replace(b"</Types>", override.encode() + b"</Types>")
            if item.filename == "xl/_rels/workbook.xml.rels":
                relation = (
                    '<Relationship Id="rIdStrings" Target="/' + part + '" Type="http://schemas'
                    '.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"/>'
                )
                data = data.replace(b"</Relationships>", relation.encode() + b"</Relationships>")
            dst.writestr(item, data)
        with dst.open(part, "w", force_zip64=True) as strings:
            strings.write(
                b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.'
                b'openxmlformats.org/spreadsheetml/2006/main">'
            )
            for _ in range(times):
                strings.write(chunk)
            strings.write(b"</sst>")


def shared_strings_of(path, part="xl/sharedStrings.xml") -> zipfile.ZipInfo:
    with zipfile.ZipFile(path) as archive:
        return archive.getinfo(part)


def test_it_refuses_shared_strings_deflating_45_fold_before_openpyxl_opens_them(
    tmp_path, openpyxl_calls
):
    # Like the reviewer's 4.4 MB file that openpyxl read for a minute: under the
    # ratio limit of every part (50) and the total limit of a 50 MiB upload (1000 MiB).
    path = tmp_path / "strings.xlsx"
    write_workbook_with_shared_strings(
        path, chunk=shared_strings_chunk(random_share=0.065), times=40
    )
    strings = shared_strings_of(path)
    assert 40 < strings.file_size / strings.compress_size < 50
    assert 32 * MiB < strings.file_size < zipguard.MAX_SHARED_STRINGS
    with open(path, "rb") as file, pytest.raises(UploadError) as caught:
        read_upload(file, filename="strings.xlsx", max_rows=100_000, max_bytes=50 * MiB)
    assert "xl/sharedStrings.xml deflates" in str(caught.value)
    assert "zip bomb" in str(caught.value)
    assert openpyxl_calls == []


def test_a_workbook_with_small_shared_strings_built_the_same_way_is_read(tmp_path, openpyxl_calls):
    # Proves the files above are valid workbooks, refused for their size alone.
    path = tmp_path / "strings.xlsx"
    write_workbook_with_shared_strings(
        path, chunk=shared_strings_chunk(random_share=0.065, size=100_000), times=1
    )
    with open(path, "rb") as file:
        sheet = read_upload(file, filename="strings.xlsx", max_rows=10, max_bytes=MiB)
    assert [row.values["question"] for row in sheet.rows] == ["Is this a bomb?"]
    assert len(openpyxl_calls) == 1


@pytest.mark.parametrize("part", ["xl/sharedStrings.xml", "xl/other/words.xml"])
def test_it_refuses_shared_strings_past_their_limit_whatever_they_are_called(
    tmp_path, openpyxl_calls, part
):
    path = tmp_path / "strings.xlsx"
    # Random text: it deflates little, so only the size limit can refuse it.
    write_workbook_with_shared_strings(
        path, chunk=shared_strings_chunk(random_share=1.0), times=3, part=part
    )
    strings = shared_strings_of(path, part)
    assert strings.file_size / strings.compress_size < 5
    with open(path, "rb") as file, pytest.raises(UploadError) as caught:
        read_upload(
            file,
            filename="strings.xlsx",
            max_rows=10,
            max_bytes=50 * MiB,
            max_shared_strings=2 * MiB,
        )
    assert "shared strings would inflate to 3 MiB, more than the 2 MiB" in str(caught.value)
    assert openpyxl_calls == []


def test_it_refuses_a_workbook_inflating_past_the_absolute_limit_whatever_the_upload_limit(
    openpyxl_calls,
):
    data = xlsx_bytes([["question"], *([f"Question number {i}?"] for i in range(30_000))])
    # Read with the defaults, then with an absolute limit below its inflated size.
    assert len(read(data, "q.xlsx", max_rows=30_000, max_bytes=50 * MiB).rows) == 30_000
    with pytest.raises(UploadError) as caught:
        read_upload(
            io.BytesIO(data),
            filename="q.xlsx",
            max_rows=30_000,
            max_bytes=50 * MiB,
            max_uncompressed=MiB,
        )
    assert "more than the 1 MiB a workbook may hold" in str(caught.value)
    assert len(openpyxl_calls) == 1


def test_the_absolute_inflation_limit_is_a_few_hundred_mib_at_most():
    # 20x the 50 MiB upload limit (1000 MiB) kept openpyxl busy for a minute.
    assert 64 * MiB <= zipguard.MAX_UNCOMPRESSED <= 300 * MiB
    assert zipguard.MAX_SHARED_STRINGS < zipguard.MAX_UNCOMPRESSED


# NUL characters, unclosed quotes, long chat_ids -------------------------------------


def test_it_refuses_a_nul_character_in_a_cell_far_into_the_csv_naming_its_row():
    rows = b"".join(b"Question %d?,c\n" % i for i in range(10_000))
    assert len(rows) > reading.CHUNK  # past the part read to detect binary files
    message = refusal(b"question,chat_id\n" + rows + b"Late\x00question?,c\n", max_rows=100_000)
    assert message.startswith("Row 10002 contains a NUL character")


def test_it_refuses_a_nul_character_in_a_column_name():
    rows = b"".join(b"Question %d?\n" % i for i in range(10_000))
    message = refusal(b"question,x\n" + rows + b"question,x\x00y\n", max_rows=100_000)
    assert "NUL character" in message


def test_it_refuses_a_nul_character_in_an_xlsx_cell(monkeypatch):
    # XML cannot carry a NUL, but a value can reach us with one (e.g. from a reader
    # that decodes _x0000_ escapes): the check is on values, whatever the format.
    original = ReadOnlyWorksheet.iter_rows

    def with_nul(self, *args, **kwargs):
        for row in original(self, *args, **kwargs):
            yield tuple(
                cell.replace("?", "\x00") if isinstance(cell, str) else cell for cell in row
            )

    monkeypatch.setattr(ReadOnlyWorksheet, "iter_rows", with_nul)
    data = xlsx_bytes([["question"], ["Fine"], ["Hi?"]])
    assert refusal(data, "q.xlsx").startswith("Row 3 contains a NUL character")


def test_it_refuses_a_csv_with_a_quote_never_closed_instead_of_swallowing_the_rows_after_it():
    data = b'question,chat_id\nFirst,a\n"Second,a\nThird,a\nFourth,a\n'
    message = refusal(data)
    assert message.startswith("Row 3 of the CSV file opens a quote")
    assert "never closed" in message


def test_a_quoted_cell_with_an_escaped_quote_and_a_line_break_is_still_read():
    sheet = read(b'question\n"He said ""hi""\nthen left",\nNext\n')
    assert [row.values["question"] for row in sheet.rows] == ['He said "hi"\nthen left', "Next"]


def test_it_refuses_a_chat_id_longer_than_the_column_naming_its_row():
    long = "c" * 256
    message = refusal(f"question,chat_id\nHi,{'c' * 255}\nHo,{long}\n".encode())
    assert message == "Row 3 has a chat_id longer than 255 characters."
