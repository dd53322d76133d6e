"""Every app's resources through the one batch GET: one query per request, field
selection, and nothing the caller may not see."""

import pytest

pytestmark = pytest.mark.django_db

URL = "/api/v1/batch/get"


@pytest.fixture
def run_id(api, run_factory):
    run = run_factory()
    assert api.post("/api/v1/runs/batch", {"runs": [run]}, format="json").status_code == 201
    return run["run_id"]


@pytest.fixture
def trace_file_ids(api, trace_root, run_id):
    files = [
        {"trace_data": f"trace {n}", "file_name": f"t{n}.txt", "run_id": run_id} for n in range(3)
    ]
    body = api.post("/api/v1/traces/write-batch", {"files": files}, format="json").json()
    return [result["id"] for result in body["results"]]


@pytest.fixture
def log_entry_ids(api, run_id):
    logs = [{"level": "info", "message": f"line {n}"} for n in range(3)]
    api.post(f"/api/v1/runs/{run_id}/setup_logs", {"logs": logs}, format="json")
    page = api.get(f"/api/v1/runs/{run_id}/setup_logs", {"fields": "seq"}).json()
    assert [line["seq"] for line in page["results"]] == [1, 2, 3]
    from setuplogs.models import LogEntry

    return list(LogEntry.objects.order_by("seq").values_list("pk", flat=True))


def test_trace_files_come_back_by_id_with_their_run(
    alice_session, trace_file_ids, run_id, django_assert_num_queries
):
    ids = [trace_file_ids[2], 999_999, trace_file_ids[0]]
    with django_assert_num_queries(1):
        body = alice_session.post(
            URL,
            {"resource_type": "trace_files", "ids": ids, "fields": ["path", "run_id"]},
            format="json",
        ).json()
    assert [item["status_code"] for item in body["results"]] == [200, 404, 200]
    assert body["results"][0]["data"] == {"path": "t2.txt", "run_id": run_id}


def test_log_entries_come_back_by_id_with_their_run(
    alice_session, log_entry_ids, run_id, django_assert_num_queries
):
    with django_assert_num_queries(1):
        body = alice_session.post(
            URL, {"resource_type": "log_entries", "ids": log_entry_ids[::-1]}, format="json"
        ).json()
    assert [item["data"]["message"] for item in body["results"]] == ["line 2", "line 1", "line 0"]
    assert {item["data"]["run_id"] for item in body["results"]} == {run_id}


def test_fields_select_on_the_trace_and_log_list_endpoints(
    api, trace_file_ids, log_entry_ids, run_id
):
    traces = api.get("/api/v1/traces/", {"fields": "id,size"}).json()["results"]
    assert traces and all(set(item) == {"id", "size"} for item in traces)
    lines = api.get(f"/api/v1/runs/{run_id}/setup_logs", {"fields": "seq,level"}).json()
    assert lines["results"][0] == {"seq": 1, "level": "info"}
    detail = api.get(f"/api/v1/traces/{trace_file_ids[0]}/", {"fields": "sha256"}).json()
    assert list(detail) == ["sha256"]
    refused = api.get("/api/v1/traces/", {"fields": "nope"})
    assert refused.status_code == 400 and "nope" in refused.json()["error"]
