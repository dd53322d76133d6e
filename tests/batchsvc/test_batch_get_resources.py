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


@pytest.fixture
def batches(alice, bob):
    from tests.batches.factories import make_batch

    return {
        "alice": make_batch(alice, [("q1", "c"), ("q2", "c")]),
        "bob": make_batch(bob, [("secret", "")]),
    }


def test_a_batch_of_another_user_is_a_404_item_like_a_missing_one(
    alice_session, batches, django_assert_num_queries
):
    missing = "00000000-0000-0000-0000-000000000000"
    ids = [str(batches["bob"].pk), str(batches["alice"].pk), missing]
    with django_assert_num_queries(1):
        body = alice_session.post(
            URL,
            {"resource_type": "batches", "ids": ids, "fields": ["name", "total_items"]},
            format="json",
        ).json()
    assert [item["status_code"] for item in body["results"]] == [404, 200, 404]
    assert body["results"][0] == {**body["results"][2], "id": ids[0]}
    assert body["results"][1]["data"] == {"name": "questions.csv", "total_items": 2}


def test_items_of_another_users_batch_are_404_items(alice_session, batches, staff):
    mine = list(batches["alice"].interactions.order_by("row_number").values_list("pk", flat=True))
    theirs = batches["bob"].interactions.get().pk
    body = alice_session.post(
        URL, {"resource_type": "interactions", "ids": [theirs, *mine]}, format="json"
    ).json()
    assert [item["status_code"] for item in body["results"]] == [404, 200, 200]
    assert body["results"][1]["data"]["input"]["question"] == "q1"
    assert body["results"][1]["data"]["batch_id"] == str(batches["alice"].pk)
    alice_session.force_authenticate(staff)
    as_staff = alice_session.post(
        URL, {"resource_type": "interactions", "ids": [theirs]}, format="json"
    ).json()
    assert as_staff["results"][0]["status_code"] == 200


def test_fields_select_on_the_batch_list_detail_and_items(api, batches):
    batch = batches["alice"]
    listed = api.get("/api/v1/batches/", {"fields": "id,status"}).json()["results"]
    assert listed == [{"id": str(batch.pk), "status": "queued"}]
    detail = api.get(f"/api/v1/batches/{batch.pk}/", {"fields": "progress"}).json()
    assert detail == {"progress": 0}
    items = api.get(f"/api/v1/batches/{batch.pk}/interactions/", {"fields": "row_number"})
    assert items.json()["results"] == [{"row_number": 2}, {"row_number": 3}]
    refused = api.get(f"/api/v1/batches/{batch.pk}/interactions/", {"fields": "owner"})
    assert refused.status_code == 400 and "owner" in refused.json()["error"]


def test_items_cost_one_query_whatever_the_number_of_ids(
    alice_session, batches, django_assert_num_queries
):
    ids = list(batches["alice"].interactions.values_list("pk", flat=True)) * 30
    with django_assert_num_queries(1):
        body = alice_session.post(URL, {"resource_type": "interactions", "ids": ids}, format="json")
    assert body.json()["total_succeeded"] == 60
