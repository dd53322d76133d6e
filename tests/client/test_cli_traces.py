"""``batchsvc traces write`` against a live server."""

import json

import pytest

from traces.models import TraceFile

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def files(tmp_path):
    """Two trace files on disk, a JSON trace and a text trace."""
    made = tmp_path / "out"
    made.mkdir()
    (made / "trace.json").write_text('{"action": "test"}')
    (made / "trace.txt").write_text("=== Trace ===\nstep 1\n")
    return [made / "trace.json", made / "trace.txt"]


def test_the_files_are_written_under_the_directory_and_linked_to_the_run(cli, files, alice_root):
    done = cli("traces", "write", *map(str, files), "--dir", "nightly/1", "--run", "build-42")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "nightly/1/trace.json: written",
        "nightly/1/trace.txt: written",
        "2 of 2 files written.",
    ]
    assert (alice_root / "nightly/1/trace.txt").read_text() == "=== Trace ===\nstep 1\n"
    assert set(TraceFile.objects.values_list("path", "run_id")) == {
        ("nightly/1/trace.json", "build-42"),
        ("nightly/1/trace.txt", "build-42"),
    }


def test_a_file_the_server_refuses_fails_alone_and_exits_3(cli, files, tmp_path, alice_root):
    empty = tmp_path / "empty.txt"
    empty.write_text("")

    done = cli("traces", "write", str(files[0]), str(empty), "--json")

    assert done.returncode == 3, done.stderr
    document = json.loads(done.stdout)
    assert (document["total"], document["written"]) == (2, 1)
    refused = document["files"][1]
    assert (refused["file_name"], refused["success"]) == ("empty.txt", False)
    assert "trace_data" in refused["error"]
    assert (alice_root / "trace.json").exists()


def test_a_file_that_cannot_be_read_is_refused_before_anything_is_sent(
    cli, files, tmp_path, trace_root
):
    done = cli("traces", "write", str(files[0]), str(tmp_path / "missing.txt"))

    assert done.returncode == 1
    assert done.sentence == (
        f"batchsvc: Cannot read {tmp_path / 'missing.txt'}: No such file or directory; "
        "nothing was sent."
    )
    assert not TraceFile.objects.exists()
