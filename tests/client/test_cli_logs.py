"""``batchsvc logs send`` and ``batchsvc logs tail`` against a live server."""

import json
import subprocess

import pytest

from setuplogs.models import LogEntry
from tests.support.waiting import WAIT, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def stored(run_id: str) -> list[tuple[str, str]]:
    entries = LogEntry.objects.filter(run__run_id=run_id).order_by("seq")
    return list(entries.values_list("level", "message"))


def test_every_line_of_a_pipe_is_stored_in_order_in_a_few_requests(cli, run_id):
    lines = "".join(f"compiling module {n}\n" for n in range(1200))

    done = cli("logs", "send", run_id, "--json", "--flush-interval", "30", input=lines)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["requests"] == 3  # 500 lines a request
    assert [message for _, message in stored(run_id)] == lines.splitlines()


def test_the_level_of_each_line_is_read_from_its_prefix(cli, run_id):
    lines = "ERROR: make failed\n[warn] disk 91% full\nINFO:root:started\nplain line\n"

    assert cli("logs", "send", run_id, input=lines).returncode == 0

    assert [level for level, _ in stored(run_id)] == ["error", "warning", "info", "info"]


def test_the_level_option_sets_the_level_of_every_line(cli, run_id):
    assert cli("logs", "send", run_id, "--level", "debug", input="ERROR: x\ny\n").returncode == 0

    assert [level for level, _ in stored(run_id)] == ["debug", "debug"]


def test_lines_are_sent_as_they_arrive_not_when_the_input_ends(start_cli, run_id):
    sender = start_cli("logs", "send", run_id, "--flush-interval", "0.1")

    sender.write(b"first line\n")
    wait_until(lambda: stored(run_id), timeout=WAIT, message="the first line stored")
    sender.write(b"second line\n")
    sender.close_input()

    assert sender.wait() == 0
    assert [message for _, message in stored(run_id)] == ["first line", "second line"]


def test_tee_copies_the_input_to_standard_output(cli, run_id):
    done = cli("logs", "send", run_id, "--tee", input="one\ntwo\n")

    assert done.returncode == 0
    assert done.stdout == "one\ntwo\n"
    assert "2 lines sent to run" in done.stderr


def test_sending_to_a_run_that_does_not_exist_is_one_sentence_and_exit_1(cli):
    done = cli("logs", "send", "no-such-run", input="hello\n")

    assert done.returncode == 1
    assert done.sentence == (
        "batchsvc: There is no run 'no-such-run' (among the runs this token may see); create "
        "it first, for example with 'batchsvc runs upload'."
    )


def test_a_line_the_server_refuses_exits_3_and_the_others_are_stored(cli, run_id, settings):
    settings.LOG_MESSAGE_MAX = 20

    done = cli("logs", "send", run_id, input="short\n" + "x" * 50 + "\nshort too\n")

    assert done.returncode == 3
    assert "2 lines sent" in done.stderr
    assert "1 refused by the server" in done.stderr
    assert [message for _, message in stored(run_id)] == ["short", "short too"]


def test_tail_prints_the_last_lines(cli, run_id):
    cli("logs", "send", run_id, input="".join(f"line {n}\n" for n in range(5)))

    done = cli("logs", "tail", run_id, "-n", "2")

    assert done.returncode == 0
    assert [line.split(maxsplit=2)[1:] for line in done.stdout.splitlines()] == [
        ["INFO", "line 3"],
        ["INFO", "line 4"],
    ]


def test_tail_json_is_one_document_with_the_lines(cli, run_id):
    cli("logs", "send", run_id, input="a\nb\n")

    done = cli("logs", "tail", run_id, "--json")

    assert [line["message"] for line in json.loads(done.stdout)["lines"]] == ["a", "b"]


def test_following_prints_new_lines_and_ends_when_the_run_ends(start_cli, cli, api, run_id):
    tail = start_cli("logs", "tail", run_id, "-f", "--interval", "0.1")
    cli("logs", "send", run_id, input="while it runs\n")
    assert tail.readline().endswith(" INFO     while it runs\n")

    response = api.patch(f"/api/v1/runs/{run_id}", {"status": "success"}, format="json")

    assert response.status_code == 200
    assert tail.wait() == 0


def test_a_reader_that_stops_early_ends_the_tail_quietly(batchsvc, cli_env, cli, run_id, tmp_path):
    cli("logs", "send", run_id, input="".join(f"line {n} {'.' * 100}\n" for n in range(3000)))

    done = subprocess.run(
        ["bash", "-c", f'"{batchsvc}" logs tail {run_id} -n 0 2>errors | head -1; '
         'echo "${PIPESTATUS[0]}"'],
        env=cli_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT * 4,
    )  # fmt: skip

    first, status = done.stdout.splitlines()
    assert first.endswith("line 0 " + "." * 100)
    assert status == "0"
    assert (tmp_path / "errors").read_text() == ""
