"""How ``batchsvc`` finds its server and token, what it says when it cannot, its
usage errors and its help."""

import json
import re
import socket
import stat

import pytest

from tests.conftest import make_run
from tests.support.front import FrontServer
from traces.models import Run

pytestmark = pytest.mark.django_db(transaction=True)

COMMANDS = [
    ("login",),
    ("runs", "upload"),
    ("logs", "send"),
    ("logs", "tail"),
    ("traces", "write"),
    ("batch", "upload"),
    ("batch", "status"),
    ("batch", "wait"),
    ("batch", "cancel"),
    ("batch", "retry-failed"),
    ("batch", "results"),
    ("get",),
]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_without_a_url_or_token_it_says_how_to_give_them_and_exits_2(cli):
    done = cli("batch", "status", "--last", env={"BATCHSVC_URL": "", "BATCHSVC_TOKEN": ""})

    assert done.returncode == 2
    assert done.sentence == (
        "batchsvc: No server URL or token given: run 'batchsvc login URL', or set BATCHSVC_URL "
        "and BATCHSVC_TOKEN, or pass --url and --token."
    )


def test_login_checks_the_token_and_keeps_both_in_a_file_only_its_owner_reads(
    cli, live_server, token, home
):
    without = {"BATCHSVC_URL": "", "BATCHSVC_TOKEN": ""}

    done = cli("login", live_server.url, input=f"{token}\n", env=without)

    assert done.returncode == 0, done.stderr
    config = home / ".config" / "batchsvc" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert json.loads(config.read_text()) == {"url": live_server.url, "token": token}
    uploaded = cli("runs", "upload", "-", input=json.dumps([make_run()]), env=without)
    assert uploaded.returncode == 0, uploaded.stderr
    assert Run.objects.count() == 1


def test_login_with_a_token_the_server_refuses_exits_1_and_keeps_nothing(cli, live_server, home):
    done = cli("login", live_server.url, "--token", "not-a-token", env={"BATCHSVC_TOKEN": ""})

    assert done.returncode == 1
    assert done.sentence.startswith(f"batchsvc: The server at {live_server.url} refused the token")
    assert not (home / ".config").exists()


def test_the_token_flag_overrides_the_environment(cli):
    done = cli("runs", "upload", "-", "--token", "wrong", input=json.dumps([make_run()]))

    assert done.returncode == 1
    assert "refused the token (HTTP 401" in done.sentence
    assert not Run.objects.exists()


def test_an_unreachable_server_is_one_sentence_and_exit_4_after_the_retry_deadline(cli):
    url = f"http://127.0.0.1:{closed_port()}"

    done = cli("batch", "status", "some-id", "--url", url, "--retry-deadline", "0.3")

    assert done.returncode == 4
    assert re.fullmatch(
        rf"batchsvc: Cannot reach the server at {url} \(ConnectError: .*\) within the retry "
        r"deadline of 0\.3 s; check the URL and that the server is running, or wait longer "
        r"with --retry-deadline\.",
        done.sentence,
    )


def test_a_url_without_its_scheme_is_a_usage_error(cli):
    done = cli("batch", "status", "x", "--url", "127.0.0.1:8000")

    assert done.returncode == 2
    assert "does not start with http:// or https://" in done.sentence


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (
            ("runs", "upload", "-", "--chunk", "0"),
            "argument --chunk: must be a whole number above 0",
        ),
        (("runs", "upload"), "the following arguments are required: FILE"),
        (("batch", "status", "--frobnicate"), "unrecognized arguments: --frobnicate"),
        (("batch", "upload", "q.csv", "--option", "delay"), "must be KEY=VALUE, not 'delay'"),
        (("batch", "status", "some-id", "--last"), "Give a batch id or --last, not both."),
        (("get", "log_entries", "12", "x"), "log_entries ids are whole numbers, not 'x'."),
    ],
)
def test_a_usage_error_is_one_sentence_and_exit_2(cli, args, problem):
    done = cli(*args)

    assert done.returncode == 2
    assert problem in done.sentence


def test_the_top_help_lists_every_command_with_exit_codes(cli):
    done = cli("--help")

    assert done.returncode == 0
    for command in COMMANDS:
        assert f"batchsvc {' '.join(command)} " in done.stdout
    assert "3 done with some items failed; 4 the server was unreachable" in done.stdout


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_each_command_has_help_with_an_example(cli, command):
    done = cli(*command, "--help")

    assert done.returncode == 0
    example = done.stdout.split("example:\n", 1)[1]
    assert f"batchsvc {' '.join(command)} " in example


def test_a_config_file_others_may_read_is_used_with_a_warning(cli, live_server, token, home):
    config = home / ".config" / "batchsvc" / "config.json"
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"url": live_server.url, "token": token}))
    config.chmod(0o644)

    done = cli("get", "runs", "x", env={"BATCHSVC_URL": "", "BATCHSVC_TOKEN": ""})

    assert done.returncode == 1  # the server answered: the file's URL and token were used
    assert f"batchsvc: {config} is readable by others; run chmod 600 {config}." in done.stderr


def test_a_failed_command_with_json_prints_its_error_as_the_document(cli):
    done = cli("batch", "status", "00000000-0000-0000-0000-000000000000", "--json")

    assert done.returncode == 1
    document = json.loads(done.stdout)
    assert document["exit_code"] == 1
    assert document["error"].startswith("There is no batch 00000000-")


def test_a_server_that_stays_unavailable_past_the_deadline_is_exit_4(cli, live_server):
    front = FrontServer(live_server.url).start()
    front.mode = "unavailable"  # 503 with Retry-After: 1, as during a database outage
    try:
        done = cli("get", "runs", "x", "--url", front.url, "--retry-deadline", "0.5")
    finally:
        front.stop()

    assert done.returncode == 4
    assert done.sentence.startswith(f"batchsvc: The server at {front.url} stayed unavailable")
    assert done.sentence.endswith("wait longer with --retry-deadline.")
