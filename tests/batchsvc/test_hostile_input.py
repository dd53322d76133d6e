"""Input meant to break the service gets a JSON 4xx and changes nothing."""

import json

import pytest

from setuplogs.models import LogEntry
from tests.conftest import error_body
from traces.models import Run

pytestmark = pytest.mark.django_db

OUT_OF_RANGE = ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"]


@pytest.mark.parametrize("url", ["/api/v1/runs/batch", "/api/v1/runs/batch-transactional"])
@pytest.mark.parametrize("start_time", OUT_OF_RANGE)
def test_a_timestamp_utc_cannot_hold_fails_its_run_not_the_batch(api, run_factory, url, start_time):
    good, bad = run_factory(), run_factory(start_time=start_time)
    body = api.post(url, {"runs": [good, bad]}, format="json").json()
    assert body["errors"] == [
        {
            "index": 1,
            "event_id": bad["event_id"],
            "error": "start_time is out of range once converted to UTC",
        }
    ]
    expected = 0 if url.endswith("transactional") else 1
    assert Run.objects.count() == expected


def test_a_single_run_or_a_patch_with_such_a_timestamp_is_a_400(api, run_factory):
    response = api.post("/api/v1/runs/", run_factory(start_time=OUT_OF_RANGE[0]), format="json")
    assert response.status_code == 400
    run = run_factory()
    api.post("/api/v1/runs/", run, format="json")
    patch = api.patch(
        f"/api/v1/runs/{run['run_id']}/", {"end_time": OUT_OF_RANGE[1]}, format="json"
    )
    assert patch.status_code == 400
    assert "end_time is out of range" in patch.json()["error"]


def test_a_log_line_with_such_a_timestamp_is_skipped_and_reported(api, run_factory):
    run = run_factory()
    api.post("/api/v1/runs/", run, format="json")
    logs = [{"message": "ok"}, {"message": "x", "timestamp": OUT_OF_RANGE[0]}]
    body = api.post(f"/api/v1/runs/{run['run_id']}/setup_logs", {"logs": logs}, format="json")
    assert body.json()["skipped"] == [
        {"index": 1, "error": "timestamp is out of range once converted to UTC"}
    ]
    assert list(LogEntry.objects.values_list("message", flat=True)) == ["ok"]


@pytest.mark.parametrize("url", ["/api/v1/runs/batch", "/api/v1/runs/", "/api/v1/batch/get"])
def test_json_nested_too_deeply_is_a_400(api, url):
    body = '{"runs": [' + "[" * 100_000 + "]" * 100_000 + "]}"
    response = api.post(url, body, content_type="application/json")
    assert response.status_code == 400
    assert error_body(response) == {"error": "Request body is nested too deeply to be read."}


def test_a_run_nested_too_deeply_refuses_the_request_and_stores_nothing(api, run_factory):
    deep = '{"a":' * 950 + "{}" + "}" * 950
    run = json.dumps(run_factory())
    body = (
        '{"runs": [' + run[:-1] + f', "metrics_json": {deep}}}, ' + json.dumps(run_factory()) + "]}"
    )
    response = api.post("/api/v1/runs/batch", body, content_type="application/json")
    assert response.status_code == 400
    assert Run.objects.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/runs/%00/",
        "/api/v1/runs/?agent_name=%00",
        "/api/v1/runs/x%00/setup_logs",
        "/api/v1/traces/?path_prefix=a%00",
        "/api/v1/batches/?status=%00",
    ],
)
def test_a_nul_character_in_the_url_is_a_json_400(api, url):
    response = api.get(url)
    assert response.status_code == 400
    assert error_body(response) == {"error": "The URL must not contain the NUL character (%00)."}


def test_a_nul_character_in_an_admin_search_is_a_400(admin_client):
    assert admin_client.get("/admin/traces/run/?q=%00").status_code == 400


@pytest.mark.parametrize("url", ["/api/v1/runs/", "/api/v1/runs/batch", "/api/v1/batch/get"])
def test_a_form_body_on_a_json_endpoint_is_a_json_415(api, url):
    response = api.post(url, "a=1&" * 2000, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in response.json()["error"]
    assert Run.objects.count() == 0


# List parameters and PATCH keys that used to be ignored: each a 400 naming the
# parameter and what it takes, and nothing changes.
REFUSED_QUERIES = [
    ({"ordering": "bogus"}, "Query parameter ordering cannot be bogus; it takes"),
    ({"ordering": "-password"}, "Query parameter ordering cannot be -password"),
    ({"page_size": "0"}, "Query parameter page_size must be a whole number from 1 to 1000"),
    ({"page_size": "-1"}, "Query parameter page_size must be a whole number from 1 to 1000"),
    ({"page_size": "abc"}, "Query parameter page_size must be a whole number from 1 to 1000"),
    ({"cursor": "garbage"}, "Query parameter cursor is not a cursor of this list"),
    ({"cursor": "cD0lNUIxJTVE"}, "Query parameter cursor belongs to another ordering"),
]


@pytest.mark.parametrize(("query", "error"), REFUSED_QUERIES)
@pytest.mark.parametrize("url", ["/api/v1/runs", "/api/v1/traces", "/api/v1/batches"])
def test_a_list_parameter_it_does_not_know_is_a_400(api, url, query, error):
    response = api.get(url, query)
    assert response.status_code == 400
    assert error_body(response)["error"].startswith(error)


@pytest.mark.parametrize(
    "body",
    [{"event_id": "0b7b6f3e-3f5e-4a53-9d2c-6d1c1f0a9b11"}, {"run_id": "other"}, {"colour": 1}, {}],
)
def test_a_patch_of_what_cannot_change_is_a_400_and_changes_nothing(api, run_factory, body):
    run = run_factory()
    api.post("/api/v1/runs", run, format="json")
    before = Run.objects.values().get()
    response = api.patch(f"/api/v1/runs/{run['run_id']}", body, format="json")
    assert response.status_code == 400
    assert "a PATCH takes status, end_time" in error_body(response)["error"]
    assert Run.objects.values().get() == before
