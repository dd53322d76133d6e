"""``batchsvc runs upload`` against a live server."""

import json

import pytest

from tests.conftest import make_run
from traces.models import Run

pytestmark = pytest.mark.django_db(transaction=True)


def json_lines(runs) -> str:
    return "".join(f"{json.dumps(run)}\n" for run in runs)


def test_json_lines_are_uploaded_with_the_format_said_and_a_summary(cli, tmp_path, alice):
    path = tmp_path / "runs.jsonl"
    path.write_text(json_lines(make_run() for _ in range(3)))

    done = cli("runs", "upload", str(path))

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"3 runs from {path} (JSON Lines): 3 created, 0 existing, 0 failed.\n"
    assert Run.objects.filter(owner=alice).count() == 3


@pytest.mark.parametrize(
    ("shape", "said"),
    [(lambda runs: runs, "a JSON array"), (lambda runs: {"runs": runs}, 'a {"runs": [...]}')],
)
def test_a_json_array_or_an_envelope_is_read_from_standard_input(cli, shape, said):
    runs = [make_run() for _ in range(2)]

    done = cli("runs", "upload", "-", input=json.dumps(shape(runs), indent=2))

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"2 runs from standard input ({said}")
    assert Run.objects.count() == 2


def test_some_failed_runs_exit_3_listing_each_failure_by_index_and_line(cli, tmp_path):
    runs = [make_run() for _ in range(4)]
    runs[3]["status"] = "exploded"
    lines = json_lines(runs).splitlines()
    lines.insert(1, "{not json")
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(lines) + "\n")

    done = cli("runs", "upload", str(path))

    assert done.returncode == 3, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == f"5 runs from {path} (JSON Lines): 3 created, 0 existing, 2 failed."
    assert out[1].startswith("  run 1 (line 2): line 2 is not valid JSON")
    assert out[2] == "  run 4 (line 5): status: Invalid enum value 'exploded'"
    assert Run.objects.count() == 3


def test_json_output_is_one_document_with_every_per_item_error(cli, tmp_path):
    runs = [make_run(status="exploded") for _ in range(60)] + [make_run()]
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(runs))

    done = cli("runs", "upload", str(path), "--json", "--chunk", "25")

    assert done.returncode == 3, done.stderr
    document = json.loads(done.stdout)
    assert (document["total"], document["created"], document["failed"]) == (61, 1, 60)
    assert [error["index"] for error in document["errors"]] == list(range(60))
    assert document["format"] == "a JSON array"


def test_every_run_failing_exits_1(cli, tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text(json_lines([make_run(job_type="")]))

    assert cli("runs", "upload", str(path)).returncode == 1


def test_a_transactional_upload_with_one_bad_run_stores_none_and_exits_1(cli, tmp_path):
    runs = [make_run() for _ in range(5)]
    runs[2]["start_time"] = "yesterday"
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(runs))

    done = cli("runs", "upload", str(path), "--transactional")

    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[0] == (
        f"Rolled back: 5 runs from {path} (a JSON array), 1 failed, so nothing was stored."
    )
    assert not Run.objects.exists()


def test_a_transactional_upload_larger_than_one_request_is_refused_before_sending(cli, tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text(json_lines(make_run() for _ in range(3)))

    done = cli("runs", "upload", str(path), "--transactional", "--chunk", "2")

    assert done.returncode == 1
    assert "holds more than 2 runs" in done.sentence
    assert "without --transactional" in done.sentence
    assert not Run.objects.exists()


def test_a_dry_run_counts_the_runs_and_stores_none(cli):
    runs = [make_run(), make_run(status="exploded")]

    done = cli("runs", "upload", "-", "--dry-run", input=json_lines(runs))

    assert done.returncode == 3
    assert done.stdout.splitlines()[0] == (
        "Dry run, nothing stored. 2 runs from standard input (JSON Lines): 1 new, 0 existing, "
        "1 failed."
    )
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty: it holds no runs."),
        (b"  \n\n", "is empty: it holds no runs."),
        (
            b"PK\x03\x04\x14\x00rest of a workbook",
            "is a zip archive (an .xlsx workbook?), not text",
        ),
        (b'{"runs": 3}', 'has "runs" that is not a list'),
        (b"run_id,status\nx,y\n", "is not JSON runs: it starts with neither [ nor {"),
    ],
)
def test_a_file_that_holds_no_runs_is_one_sentence_and_exit_1(cli, tmp_path, content, problem):
    path = tmp_path / "runs.json"
    path.write_bytes(content)

    done = cli("runs", "upload", str(path))

    assert done.returncode == 1
    assert done.sentence.startswith(f"batchsvc: {path} {problem}")


def test_a_missing_file_is_one_sentence_and_exit_1(cli, tmp_path):
    done = cli("runs", "upload", str(tmp_path / "nope.jsonl"))

    assert done.returncode == 1
    assert done.sentence == (
        f"batchsvc: Cannot read {tmp_path / 'nope.jsonl'}: No such file or directory; give a "
        "runs file, or - for standard input."
    )
