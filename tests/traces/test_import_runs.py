import io
import json
import re

import pytest
from django.core.management import CommandError, call_command

from traces.models import Run

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _alice(alice):
    """Every import here acts as alice (--owner alice)."""


def run_import(*args, stdin=None, monkeypatch=None):
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    call_command("import_runs", "--owner", "alice", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_imports_a_json_array_in_chunks_and_prints_a_summary(tmp_path, run_factory):
    runs = [run_factory() for _ in range(25)]
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(runs))
    out, _ = run_import(str(path), "--chunk", "10")
    assert "25 runs read: 25 created, 0 existing, 0 failed." in out
    assert Run.objects.count() == 25


def test_it_streams_json_lines_from_stdin_and_is_idempotent(monkeypatch, run_factory):
    runs = [run_factory() for _ in range(3)]
    lines = ("\n".join(json.dumps(r) for r in runs) + "\n\n").encode()
    run_import("-", stdin=lines, monkeypatch=monkeypatch)
    out, _ = run_import("-", stdin=lines, monkeypatch=monkeypatch)
    assert "3 runs read: 0 created, 3 existing, 0 failed." in out
    assert Run.objects.count() == 3


def test_a_bad_line_fails_alone_and_the_command_says_so(tmp_path, run_factory):
    path = tmp_path / "runs.jsonl"
    path.write_text(f"{json.dumps(run_factory())}\n{{not json\n{json.dumps(run_factory())}\n")
    err = io.StringIO()
    with pytest.raises(CommandError, match="1 runs failed; the others were imported"):
        call_command("import_runs", "--owner", "alice", str(path), stdout=io.StringIO(), stderr=err)
    assert "item 1: line 2 is not valid JSON" in err.getvalue()
    assert Run.objects.count() == 2


def test_transactional_import_rolls_back_every_chunk_on_one_failure(tmp_path, run_factory):
    runs = [run_factory() for _ in range(30)]
    runs[25]["status"] = "exploded"
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(runs))
    with pytest.raises(CommandError, match="Rolled back: nothing was imported"):
        run_import(str(path), "--transactional", "--chunk", "10")
    assert Run.objects.count() == 0


def test_a_missing_file_or_a_bad_chunk_size_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run_import(str(tmp_path / "nope.json"))
    with pytest.raises(CommandError, match="--chunk"):
        run_import(str(tmp_path / "nope.json"), "--chunk", "0")


def test_a_truncated_json_array_is_a_command_error(tmp_path, run_factory):
    path = tmp_path / "runs.json"
    path.write_text(json.dumps([run_factory()])[:-5])
    with pytest.raises(CommandError, match="not a valid JSON array"):
        run_import(str(path))
    assert Run.objects.count() == 0


def test_the_runs_belong_to_the_named_owner_and_an_unknown_one_is_refused(
    tmp_path, run_factory, alice, bob
):
    path = tmp_path / "runs.json"
    path.write_text(json.dumps([run_factory(run_id="shared")]))
    call_command("import_runs", "--owner", "bob", str(path), stdout=io.StringIO())
    assert Run.objects.get().owner == bob
    # alice has the same run_id to herself: identifiers are per owner
    call_command("import_runs", "--owner", "alice", str(path), stdout=io.StringIO())
    assert Run.objects.filter(run_id="shared").count() == 2
    with pytest.raises(CommandError, match="there is no user 'carol'"):
        call_command("import_runs", "--owner", "carol", str(path), stdout=io.StringIO())


def test_an_envelope_is_refused_saying_what_import_runs_takes(tmp_path, run_factory):
    path = tmp_path / "runs.json"
    path.write_text(json.dumps({"runs": [run_factory()]}, indent=2))
    with pytest.raises(CommandError) as refused:
        run_import(str(path))
    assert str(refused.value).startswith(
        f'{path} is a {{"runs": [...]}} envelope, as the API takes; import_runs takes the '
        "runs themselves, a JSON array or JSON Lines"
    )
    assert Run.objects.count() == 0


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty: it holds no runs."),
        (b"\n  \n", "is empty: it holds no runs."),
        (b"PK\x03\x04\x14\x00\x06\x00", "is a zip archive (an .xlsx workbook?), not text"),
        (b"\x00\x01\x02binary", "is not UTF-8 text (it looks binary)"),
    ],
)
def test_an_empty_or_binary_file_is_refused_with_what_it_is(tmp_path, content, problem):
    path = tmp_path / "runs.jsonl"
    path.write_bytes(content)
    with pytest.raises(CommandError, match=f"^{re.escape(f'{path} {problem}')}"):
        run_import(str(path))


def test_an_envelope_on_standard_input_is_refused_too(monkeypatch, run_factory):
    envelope = json.dumps({"runs": [run_factory()]}).encode()
    with pytest.raises(CommandError, match=r"^standard input is a \{\"runs\": \[\.\.\.\]\}"):
        run_import("-", stdin=envelope, monkeypatch=monkeypatch)


def test_a_file_with_a_byte_order_mark_imports(tmp_path, run_factory):
    path = tmp_path / "runs.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps([run_factory()]).encode())
    out, _ = run_import(str(path))
    assert "1 runs read: 1 created" in out


def test_progress_off_a_terminal_is_plain_lines(tmp_path, run_factory):
    path = tmp_path / "runs.json"
    path.write_text(json.dumps([run_factory() for _ in range(3)]))
    _, err = run_import(str(path), "--chunk", "2")
    assert "\r" not in err
    assert err.splitlines()[-1] == "Importing: 3 runs"
