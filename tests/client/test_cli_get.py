"""``batchsvc get`` (batch GET) against a live server."""

import json

import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_each_object_is_printed_and_a_missing_one_makes_it_exit_3(cli, run_id):
    done = cli("get", "runs", run_id, "no-such-run", "--fields", "run_id,status")

    assert done.returncode == 3
    found, missing = done.stdout.splitlines()
    assert json.loads(found.split(": ", 1)[1]) == {"run_id": run_id, "status": "running"}
    assert missing == "no-such-run: error 404: Not found."


def test_json_carries_every_result_in_the_order_asked(cli, run_id):
    done = cli("get", "runs", "nope", run_id, "--json")

    document = json.loads(done.stdout)
    assert [result["id"] for result in document["results"]] == ["nope", run_id]
    assert (document["total_succeeded"], document["total_failed"]) == (1, 1)


def test_every_object_missing_exits_1(cli):
    assert cli("get", "batches", "00000000-0000-0000-0000-000000000000").returncode == 1


def test_more_ids_than_one_request_holds_are_fetched_in_several_and_answered_once_each(cli, run_id):
    done = cli("get", "runs", *[run_id] * 150, "--json")

    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert (document["total_requested"], document["total_succeeded"]) == (150, 150)
    assert len(document["results"]) == 150
