import pytest

from tests.conftest import error_body
from traces.models import Run

pytestmark = pytest.mark.django_db


def test_posting_one_run_answers_201_then_200_with_the_stored_run(api, run_factory):
    run = run_factory()
    first = api.post("/api/v1/runs/", run, format="json")
    assert first.status_code == 201
    assert first.json()["run_id"] == run["run_id"]
    again = api.post("/api/v1/runs/", {**run, "status": "success"}, format="json")
    assert again.status_code == 200
    assert again.json()["status"] == "running"
    assert Run.objects.count() == 1


def test_posting_an_invalid_run_is_a_400_saying_why(api, run_factory):
    response = api.post("/api/v1/runs/", run_factory(start_time=5), format="json")
    assert response.status_code == 400
    assert error_body(response) == {
        "error": "Run not stored: start_time: Expected `datetime`, got `int`."
    }
    assert Run.objects.count() == 0


def test_list_filters_by_field_and_start_time_range(api, run_factory):
    runs = [
        run_factory(agent_name="a", status="success", start_time="2026-01-01T00:00:00Z"),
        run_factory(agent_name="a", status="failure", start_time="2026-02-01T00:00:00Z"),
        run_factory(agent_name="b", status="success", start_time="2026-03-01T00:00:00Z"),
    ]
    api.post("/api/v1/runs/batch", {"runs": runs}, format="json")

    def run_ids(query):
        return [r["run_id"] for r in api.get(f"/api/v1/runs/?{query}").json()["results"]]

    assert run_ids("agent_name=a&ordering=start_time") == [runs[0]["run_id"], runs[1]["run_id"]]
    assert run_ids("status=success&ordering=-start_time") == [runs[2]["run_id"], runs[0]["run_id"]]
    assert run_ids(
        "start_time_after=2026-01-15T00:00:00Z&start_time_before=2026-02-15T00:00:00Z"
    ) == [runs[1]["run_id"]]


def test_an_invalid_filter_value_is_a_400(api):
    response = api.get("/api/v1/runs/?status=exploded")
    assert response.status_code == 400
    assert "status" in response.json()["details"]


def test_the_list_is_cursor_paginated_without_gaps_or_repeats(api, run_factory):
    runs = [run_factory(start_time=f"2026-01-01T00:00:{s:02d}Z") for s in range(25)]
    api.post("/api/v1/runs/batch", {"runs": runs}, format="json")
    seen, url = [], "/api/v1/runs/?page_size=10"
    while url:
        page = api.get(url).json()
        seen += [r["run_id"] for r in page["results"]]
        url = page["next"]
    assert sorted(seen) == sorted(r["run_id"] for r in runs)
    assert len(seen) == 25


def test_patch_changes_only_the_fields_sent(api, run_factory):
    run = run_factory(error_summary="none")
    api.post("/api/v1/runs/", run, format="json")
    response = api.patch(
        f"/api/v1/runs/{run['run_id']}/",
        {"status": "success", "end_time": "2026-01-28T11:00:00Z", "metrics_json": {"done": 1}},
        format="json",
    )
    assert response.status_code == 200
    stored = Run.objects.get(run_id=run["run_id"])
    assert stored.status == "success"
    assert stored.metrics_json == {"done": 1}
    assert stored.context_json == run["context_json"]
    assert stored.error_summary == "none"


def test_patch_refuses_an_invalid_status_and_changes_nothing(api, run_factory):
    run = run_factory()
    api.post("/api/v1/runs/", run, format="json")
    response = api.patch(f"/api/v1/runs/{run['run_id']}/", {"status": "nope"}, format="json")
    assert response.status_code == 400
    assert Run.objects.get(run_id=run["run_id"]).status == "running"


ALLOWED = "status, end_time, metrics_json, context_json, error_summary"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"colour": "red"}, f"Run not changed: colour cannot be changed; a PATCH takes {ALLOWED}."),
        (
            {"status": "success", "event_id": "0b7b6f3e-3f5e-4a53-9d2c-6d1c1f0a9b11"},
            f"Run not changed: event_id cannot be changed; a PATCH takes {ALLOWED}.",
        ),
        ({}, f"Run not changed: the body names no field; a PATCH takes {ALLOWED}."),
        (
            {"end_time": "2026-01-28T10:00:00Z"},
            "Run not changed: end_time 2026-01-28T10:00:00+00:00 is before start_time "
            "2026-01-28T10:30:00+00:00.",
        ),
    ],
)
def test_patch_refuses_what_it_cannot_change_and_changes_nothing(api, run_factory, body, error):
    run = run_factory()
    api.post("/api/v1/runs/", run, format="json")
    before = Run.objects.values().get(run_id=run["run_id"])
    response = api.patch(f"/api/v1/runs/{run['run_id']}/", body, format="json")
    assert (response.status_code, response.json()["error"]) == (400, error)
    assert Run.objects.values().get(run_id=run["run_id"]) == before  # updated_at included


def test_a_nul_character_is_refused_by_the_single_post_and_by_patch(api, run_factory):
    response = api.post("/api/v1/runs/", run_factory(git_branch="a\x00"), format="json")
    assert response.status_code == 400
    assert "git_branch: must not contain the NUL character" in response.json()["error"]
    run = run_factory(error_summary="kept")
    api.post("/api/v1/runs/", run, format="json")
    url = f"/api/v1/runs/{run['run_id']}/"
    response = api.patch(url, {"error_summary": "a\x00", "status": "failure"}, format="json")
    assert response.status_code == 400
    assert response.json()["error"] == (
        "Run not changed: error_summary: must not contain the NUL character."
    )
    stored = Run.objects.get(run_id=run["run_id"])
    assert (stored.error_summary, stored.status) == ("kept", "running")


def test_put_and_delete_are_not_allowed(api, run_factory):
    run = run_factory()
    api.post("/api/v1/runs/", run, format="json")
    assert api.put(f"/api/v1/runs/{run['run_id']}/", run, format="json").status_code == 405
    assert api.delete(f"/api/v1/runs/{run['run_id']}/").status_code == 405


def test_reading_runs_needs_authentication(anonymous):
    assert anonymous.get("/api/v1/runs/").status_code == 401


def test_the_slash_at_the_end_of_a_runs_url_may_be_left_off(api, run_factory):
    run = run_factory()
    assert api.post("/api/v1/runs", run, format="json").status_code == 201
    assert api.get(f"/api/v1/runs/{run['run_id']}").json()["run_id"] == run["run_id"]
    assert api.get("/api/v1/traces").status_code == 200
