import csv
import io
import json
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from openpyxl import load_workbook

from batches.models import Batch, BatchStatus
from tests.batches.factories import csv_bytes, make_batch
from tests.support.workers import ROOT, Worker, database_url

ROWS = [("first", "a"), ("second", "a"), ("=2+2", "")]


@pytest.fixture
def questions(tmp_path):
    path = tmp_path / "questions.csv"
    path.write_bytes(csv_bytes(ROWS))
    return path


@pytest.mark.django_db
def test_import_batch_creates_a_queued_batch_like_an_upload(alice, questions):
    out = io.StringIO()
    call_command(
        "import_batch",
        str(questions),
        "--owner",
        "alice",
        "--name",
        "Quiz",
        "--options",
        '{"delay": 0}',
        stdout=out,
    )
    batch = Batch.objects.get()
    assert (batch.owner, batch.name, batch.options, batch.total_items) == (
        alice,
        "Quiz",
        {"delay": 0},
        3,
    )
    assert f"Batch {batch.pk} queued with 3 items." in out.getvalue()


@pytest.mark.django_db
def test_import_batch_reports_the_rows_it_skipped(alice, tmp_path):
    path = tmp_path / "questions.csv"
    path.write_bytes(csv_bytes([("first", "a"), ("", "a"), ("third", ""), ("", "b")]))
    out, err = io.StringIO(), io.StringIO()

    call_command("import_batch", str(path), "--owner", "alice", stdout=out, stderr=err)

    batch = Batch.objects.get()
    assert f"Batch {batch.pk} queued with 2 items; 2 rows skipped." in out.getvalue()
    assert err.getvalue().splitlines() == [
        "Skipped row 3: no question.",
        "Skipped row 5: no question.",
    ]


@pytest.mark.django_db
def test_import_batch_refuses_a_bad_file_or_owner_and_creates_nothing(alice, tmp_path, questions):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"prompt\nhello\n")
    with pytest.raises(CommandError, match="no 'question' column"):
        call_command("import_batch", str(bad), "--owner", "alice")
    with pytest.raises(CommandError, match="no user 'nobody'"):
        call_command("import_batch", str(questions), "--owner", "nobody")
    with pytest.raises(CommandError, match="Unknown processor"):
        call_command("import_batch", str(questions), "--owner", "alice", "--processor", "x")
    assert not Batch.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_import_batch_waits_for_a_worker_and_prints_a_summary(alice, questions):
    worker = Worker().start()
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(
            "import_batch",
            str(questions),
            "--owner",
            "alice",
            "--wait",
            "--poll",
            "0.1",
            "--timeout",
            "60",
            stdout=out,
            stderr=err,
        )
    finally:
        worker.stop()
    batch = Batch.objects.get()
    assert batch.status == BatchStatus.PROCESSED
    assert f"Batch {batch.pk} processed: 3 succeeded, 0 failed, 0 cancelled of 3." in (
        out.getvalue()
    )
    assert "3/3 items (100%), 3 succeeded, 0 failed" in err.getvalue()
    assert "\r" not in err.getvalue()  # plain lines off a terminal, not a bar


@pytest.mark.django_db
@pytest.mark.parametrize("format", ["csv", "xlsx", "json"])
def test_export_batch_writes_the_results_file(alice, tmp_path, format):
    batch = make_batch(alice, ROWS)
    target = tmp_path / f"out.{format}"
    out = io.StringIO()

    call_command("export_batch", str(batch.pk), "--format", format, "-o", str(target), stdout=out)

    assert f"Wrote 3 items of batch {batch.pk}" in out.getvalue()
    if format == "csv":
        rows = list(csv.DictReader(io.StringIO(target.read_text("utf-8-sig"))))
        assert [r["question"] for r in rows] == ["first", "second", "'=2+2"]
    elif format == "xlsx":
        sheet = load_workbook(target).active
        assert sheet["C4"].value == "'=2+2"
    else:
        assert [item["status"] for item in json.loads(target.read_text())] == ["pending"] * 3
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left


@pytest.mark.django_db
def test_export_batch_refuses_an_unknown_batch(tmp_path):
    with pytest.raises(CommandError, match="There is no batch"):
        call_command(
            "export_batch", "00000000-0000-0000-0000-000000000000", "-o", str(tmp_path / "x.csv")
        )


@pytest.mark.django_db
@pytest.mark.parametrize("format", ["csv", "xlsx", "json"])
def test_export_batch_writes_the_format_of_the_file_extension(alice, tmp_path, format):
    batch = make_batch(alice, ROWS)
    target = tmp_path / f"results.{format.upper() if format == 'json' else format}"
    call_command("export_batch", str(batch.pk), "-o", str(target), stdout=io.StringIO())
    data = target.read_bytes()
    if format == "xlsx":
        assert data.startswith(b"PK\x03\x04")
        assert load_workbook(target).active["A2"].value == 2
    elif format == "json":
        assert json.loads(data)[0]["row_number"] == 2
    else:
        assert data.decode("utf-8-sig").startswith("row_number,chat_id,question")


@pytest.mark.django_db
def test_export_batch_refuses_a_format_the_extension_contradicts_and_writes_nothing(
    alice, tmp_path
):
    batch = make_batch(alice, ROWS)
    with pytest.raises(CommandError) as caught:
        call_command(
            "export_batch", str(batch.pk), "--format", "csv", "-o", str(tmp_path / "r.xlsx")
        )
    assert str(caught.value) == (
        f"--format csv does not match the extension of {tmp_path / 'r.xlsx'} (.xlsx); "
        "name the file .csv or leave --format out."
    )
    with pytest.raises(CommandError, match="Cannot tell the format from the name"):
        call_command("export_batch", str(batch.pk), "-o", str(tmp_path / "results"))
    assert list(tmp_path.iterdir()) == []
    call_command(
        "export_batch",
        str(batch.pk),
        "--format",
        "csv",
        "-o",
        str(tmp_path / "r.txt"),
        stdout=io.StringIO(),
    )
    assert (tmp_path / "r.txt").read_text("utf-8-sig").startswith("row_number")


@pytest.mark.django_db
@pytest.mark.parametrize("args", [["-o", "-"], []])
def test_export_batch_writes_csv_to_stdout_and_its_summary_to_stderr(alice, args):
    batch = make_batch(alice, ROWS)
    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()
    call_command("export_batch", str(batch.pk), *args, stdout=out, stderr=err)
    out.flush()
    text = out.buffer.getvalue().decode("utf-8-sig")
    assert [row["question"] for row in csv.DictReader(io.StringIO(text))] == [
        "first",
        "second",
        "'=2+2",
    ]
    assert f"Wrote 3 items of batch {batch.pk} (queued) to stdout" in err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_export_batch_writes_an_xlsx_to_a_real_stdout_as_bytes(alice):
    batch = make_batch(alice, ROWS)
    done = subprocess.run(
        [sys.executable, "manage.py", "export_batch", str(batch.pk), "--format", "xlsx"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url(), "SECRET_KEY": "test"},
        capture_output=True,
        timeout=60,
        check=True,
    )
    sheet = load_workbook(io.BytesIO(done.stdout)).active
    assert [cell.value for cell in sheet[4]][:3] == [4, None, "'=2+2"]
    assert b"to stdout" in done.stderr


@pytest.mark.django_db(transaction=True)
def test_export_batch_into_a_pipe_its_reader_closed_ends_without_a_traceback(alice, tmp_path):
    batch = make_batch(alice, [(f"question {n} {'.' * 200}", "") for n in range(2000)])
    env = {**os.environ, "DATABASE_URL": database_url(), "SECRET_KEY": "test"}

    done = subprocess.run(
        ["bash", "-c", f"{sys.executable} manage.py export_batch {batch.pk} 2>{tmp_path}/errors "
         '| head -c 100 >/dev/null; echo "${PIPESTATUS[0]}"'],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip

    assert done.stdout == "0\n"
    assert (tmp_path / "errors").read_text() == ""
