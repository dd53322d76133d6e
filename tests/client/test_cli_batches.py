"""``batchsvc batch ...`` against a live server and, where batches run, a real worker
process."""

import csv
import io
import json
import os
import pty
import subprocess
import threading

import pytest
from openpyxl import load_workbook

from batches.models import Batch, BatchStatus, Interaction, InteractionStatus
from tests.batches.factories import csv_bytes, make_batch
from tests.support.waiting import WAIT

pytestmark = pytest.mark.django_db(transaction=True)

HEADER = ("question", "chat_id", "note")
ROWS = [("first", "c", "n1"), ("second", "c", "n2"), ("third", "c", "n3")]


@pytest.fixture
def questions(tmp_path):
    path = tmp_path / "questions.csv"
    path.write_bytes(csv_bytes(ROWS, HEADER))
    return path


@pytest.fixture
def failed_batch(alice):
    """alice's ended batch whose second and third rows failed (the third's error reads
    like a formula), the first succeeded."""
    batch = make_batch(alice, [("fine", "a", "x"), ("=2+2", "a", "y"), ("q3", "", "z")], HEADER)
    items = list(batch.interactions.order_by("row_number"))
    Interaction.objects.filter(pk=items[0].pk).update(
        status=InteractionStatus.SUCCEEDED, output={"text": "ok"}
    )
    Interaction.objects.filter(pk=items[1].pk).update(
        status=InteractionStatus.FAILED, error="http processor: HTTP 400 Bad Request."
    )
    Interaction.objects.filter(pk=items[2].pk).update(
        status=InteractionStatus.FAILED, error="=HYPERLINK(1)"
    )
    Batch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.COMPLETED_WITH_ERRORS, processed_items=1, failed_items=2
    )
    return batch


def test_upload_prints_the_id_at_once_then_waits_for_the_worker(start_cli, questions, start_worker):
    upload = start_cli("batch", "upload", str(questions), "--wait", "--poll", "0.1")

    line = upload.readline()
    batch = Batch.objects.get()
    assert line == f"Batch {batch.pk} queued with 3 items.\n"
    assert batch.status == BatchStatus.QUEUED  # printed before any worker took it

    start_worker()
    assert upload.wait() == 0
    assert upload.readline().startswith(f"Batch {batch.pk} (questions.csv): processed, 3 of 3")


def test_waiting_off_a_terminal_prints_plain_progress_lines(cli, questions, start_worker):
    start_worker()

    done = cli("batch", "upload", str(questions), "--wait", "--poll", "0.1")

    assert done.returncode == 0, done.stderr
    batch = Batch.objects.get()
    assert "\r" not in done.stderr
    assert f"Batch {str(batch.pk)[:8]}: 3/3 items (100%), 3 succeeded, 0 failed" in done.stderr


def test_waiting_on_a_terminal_draws_a_progress_bar(batchsvc, cli_env, questions, start_worker):
    start_worker()
    terminal, attached = pty.openpty()
    drawn: list[bytes] = []
    reader = threading.Thread(target=read_all, args=(terminal, drawn), daemon=True)
    reader.start()
    try:
        done = subprocess.run(
            [batchsvc, "batch", "upload", str(questions), "--wait", "--poll", "0.1"],
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=attached,
            timeout=WAIT * 4,
        )
    finally:
        os.close(attached)
        reader.join(WAIT)
        os.close(terminal)

    assert done.returncode == 0
    text = b"".join(drawn).decode("utf-8", "replace")
    assert "\r" in text  # redrawn in place
    assert "3/3" in text
    assert "3 succeeded, 0 failed" in text


def read_all(fd: int, into: list[bytes]) -> None:
    """Read what is written to a terminal from its other end, until it is closed."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other end is closed
            return
        if not chunk:
            return
        into.append(chunk)


def test_last_resumes_the_batch_uploaded_last(cli, questions, start_worker):
    first = cli("batch", "upload", str(questions))
    second = cli("batch", "upload", str(questions), "--name", "again")
    assert (first.returncode, second.returncode) == (0, 0)
    start_worker()

    done = cli("batch", "wait", "--last", "--poll", "0.1", "--json")

    assert done.returncode == 0, done.stderr
    again = Batch.objects.get(name="again")
    assert json.loads(done.stdout)["id"] == str(again.pk)
    assert json.loads(done.stdout)["status"] == "processed"


def test_a_batch_with_failed_rows_exits_3_and_its_failed_rows_come_back_as_uploaded(
    cli, questions, stub, settings, start_worker, tmp_path
):
    settings.BATCH_HTTP_URL = f"{stub.url}/answer"  # the upload checks it is configured
    stub.replies = [{"json": {"text": "ok"}}, {"status": 400, "json": {"error": "no"}}]
    start_worker(BATCH_HTTP_URL=f"{stub.url}/answer", BATCH_CONCURRENCY=1)

    waited = cli(
        "batch", "upload", str(questions), "--processor", "http", "--wait", "--poll", "0.1"
    )
    results = cli("batch", "results", "--last", "--failed-only", "-o", "failed.csv")

    assert waited.returncode == 3, waited.stderr
    assert results.returncode == 0, results.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / "failed.csv").read_text("utf-8-sig"))))
    assert [{k: v for k, v in row.items() if k != "error"} for row in rows] == [
        {"question": "second", "chat_id": "c", "note": "n2"}
    ]
    assert rows[0]["error"].startswith("http processor: HTTP 400 Bad Request")


def read_failed(path, format) -> list[dict]:
    if format == "csv":
        return list(csv.DictReader(io.StringIO(path.read_text("utf-8-sig"))))
    if format == "json":
        return json.loads(path.read_text())
    sheet = load_workbook(path).active
    header, *rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    return [dict(zip(header, row, strict=True)) for row in rows]


@pytest.mark.parametrize("format", ["csv", "xlsx", "json"])
def test_failed_only_writes_exactly_the_failed_rows_with_their_columns_and_error(
    cli, failed_batch, tmp_path, format
):
    target = tmp_path / f"failed.{format}"

    done = cli("batch", "results", str(failed_batch.pk), "--failed-only", "-o", str(target))

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Wrote 2 failed rows of batch {failed_batch.pk}")
    blank = None if format == "xlsx" else ""  # an empty cell; JSON keeps the upload's ""
    refused = "http processor: HTTP 400 Bad Request."
    assert read_failed(target, format) == [
        {"question": "=2+2", "chat_id": "a", "note": "y", "error": refused},
        {"question": "q3", "chat_id": blank, "note": "z", "error": "'=HYPERLINK(1)"},
    ]


@pytest.mark.parametrize("format", ["csv", "xlsx"])
def test_the_failed_rows_file_uploads_again_as_a_batch_of_those_rows(
    cli, failed_batch, tmp_path, format
):
    target = tmp_path / f"failed.{format}"
    cli("batch", "results", str(failed_batch.pk), "--failed-only", "-o", str(target))

    done = cli("batch", "upload", str(target))

    assert done.returncode == 0, done.stderr
    again = Batch.objects.exclude(pk=failed_batch.pk).get()
    questions = again.interactions.order_by("row_number").values_list("input__question", flat=True)
    assert list(questions) == ["=2+2", "q3"]


def test_results_go_to_standard_output_as_csv_with_the_summary_on_standard_error(cli, failed_batch):
    done = cli("batch", "results", str(failed_batch.pk))

    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout_bytes.decode("utf-8-sig"))))
    assert [row["status"] for row in rows] == ["succeeded", "failed", "failed"]
    assert f"Wrote 3 rows of batch {failed_batch.pk}" in done.stderr


def test_a_reader_that_stops_early_ends_the_results_quietly(batchsvc, cli_env, alice, tmp_path):
    batch = make_batch(alice, [(f"question {n} {'.' * 200}", "") for n in range(2000)])

    done = subprocess.run(
        ["bash", "-c", f'"{batchsvc}" batch results {batch.pk} 2>errors | head -c 100 >/dev/null; '
         'echo "${PIPESTATUS[0]}"'],
        env=cli_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT * 4,
    )  # fmt: skip

    assert done.stdout == "0\n"
    assert (tmp_path / "errors").read_text() == ""


def test_status_json_is_one_document_about_the_batch(cli, failed_batch):
    done = cli("batch", "status", str(failed_batch.pk), "--json")

    assert done.returncode == 0
    document = json.loads(done.stdout)
    assert (document["id"], document["failed_items"]) == (str(failed_batch.pk), 2)


def test_retry_failed_queues_the_failed_rows_again(cli, failed_batch):
    done = cli("batch", "retry-failed", str(failed_batch.pk))

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"Batch {failed_batch.pk}: 2 failed items queued again.\n"
    assert failed_batch.interactions.filter(status=InteractionStatus.PENDING).count() == 2


def test_cancelling_an_ended_batch_is_the_servers_reason_and_exit_1(cli, questions):
    cli("batch", "upload", str(questions))
    assert cli("batch", "cancel", "--last").returncode == 0

    done = cli("batch", "cancel", "--last")

    assert done.returncode == 1
    assert done.sentence.startswith(f"batchsvc: Batch {Batch.objects.get().pk}: ")


def test_an_unknown_batch_is_one_sentence_and_exit_1(cli):
    done = cli("batch", "status", "00000000-0000-0000-0000-000000000000")

    assert done.returncode == 1
    assert done.sentence == (
        "batchsvc: There is no batch 00000000-0000-0000-0000-000000000000 (among those this "
        "token may see); 'batchsvc batch status --last' shows your most recent."
    )


def test_a_spreadsheet_the_server_refuses_is_one_sentence_and_exit_1(cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"prompt\nhello\n")

    done = cli("batch", "upload", str(bad))

    assert done.returncode == 1
    assert done.sentence.startswith(f"batchsvc: The server refused {bad}: ")
    assert done.sentence.endswith("Fix it and upload it again.")
    assert not Batch.objects.exists()


def test_uploading_a_file_that_does_not_exist_is_one_sentence_and_exit_1(cli, tmp_path):
    done = cli("batch", "upload", str(tmp_path / "nope.csv"))

    assert done.returncode == 1
    assert done.sentence == (
        f"batchsvc: {tmp_path / 'nope.csv'} is not a file; give the path of a .csv or .xlsx file."
    )
