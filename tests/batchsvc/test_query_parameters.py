"""Every list refuses a query parameter it does not take, naming the ones it takes,
and answers a bad filter value with a 400 whatever characters it holds."""

import pytest

from tests.batches.factories import make_batch
from tests.conftest import error_body

pytestmark = pytest.mark.django_db

COMMON = ["fields", "page_size", "cursor"]


@pytest.fixture
def lists(api, alice, run_factory):
    """Each list URL with the query parameters it takes (besides format)."""
    run = run_factory()
    api.post("/api/v1/runs/", run, format="json")
    batch = make_batch(alice, [("hello", "a")])
    return {
        "/api/v1/runs/": [
            *COMMON,
            "ordering",
            *["owner", "agent_name", "job_type", "status", "product", "parent_run_id"],
            *["start_time_after", "start_time_before"],
        ],
        "/api/v1/traces/": [*COMMON, "ordering", "owner", "run_id", "path_prefix"],
        f"/api/v1/runs/{run['run_id']}/setup_logs": [
            *["fields", "owner", "page_size", "cursor"],
            *["after", "level", "min_level", "tail"],
        ],
        "/api/v1/batches/": [*COMMON, "ordering", "status", "processor"],
        f"/api/v1/batches/{batch.pk}/interactions": [*COMMON, "status", "chat_id"],
    }


def test_every_list_refuses_an_unknown_parameter_listing_those_it_takes(api, lists):
    for url, taken in lists.items():
        response = api.get(url, {"bogus_filter": "1"})
        assert response.status_code == 400, url
        body = error_body(response)
        assert body["details"] == {"unknown": ["bogus_filter"], "valid": [*taken, "format"]}, url
        assert body["error"] == (
            f"Unknown query parameter 'bogus_filter'; this list takes: {', '.join(taken)}, format."
        )


def test_a_misspelt_filter_is_refused_rather_than_ignored(api, run_factory):
    api.post("/api/v1/runs/", run_factory(status="running"), format="json")
    response = api.get("/api/v1/runs/", {"stauts": "success"})
    assert response.status_code == 400
    assert response.json()["details"]["unknown"] == ["stauts"]


VALUES = {
    "fields": "owner",
    "page_size": "5",
    "ordering": "created_at",
    "start_time_after": "2026-01-01T00:00:00Z",
    "start_time_before": "2026-01-01T00:00:00Z",
    "after": "0",
    "tail": "1",
    "level": "info",
    "min_level": "info",
    "format": "json",
    "owner": "alice",
}
STATUS = {"runs": "running", "batches": "queued", "interactions": "pending"}


def test_every_parameter_a_list_takes_is_accepted(api, lists):
    for url, taken in lists.items():
        resource = "interactions" if "interactions" in url else url.split("/")[3]
        for name in [*taken, "format"]:
            if name == "cursor":
                continue  # only a cursor the list gave is one
            value = STATUS[resource] if name == "status" else VALUES.get(name, "x")
            if name == "fields" and resource in ("runs", "interactions") and "setup" in url:
                value = "seq"
            if name == "fields" and resource == "interactions":
                value = "status"
            response = api.get(url, {name: value})
            assert response.status_code == 200, (url, name, response.content)


@pytest.mark.parametrize("value", ["x%", "%s%s", "%(name)s", "{}", "{0}", "100%"])
def test_a_filter_value_with_format_characters_is_a_400_quoting_it(api, run_factory, value):
    run = run_factory()
    api.post("/api/v1/runs/", run, format="json")
    response = api.get(f"/api/v1/runs/{run['run_id']}/setup_logs", {"level": value})
    assert response.status_code == 400
    body = error_body(response)
    assert body["error"] == (
        "Query parameter level is not valid: level must be one of debug, info, warning, "
        f"error, critical, not {value!r}."
    )
    assert body["details"] == {"level": [body["error"].partition(": ")[2][:-1]]}


def test_every_list_of_the_schema_takes_exactly_the_parameters_it_documents(api, lists):
    schema = api.get("/api/schema/?format=json").json()
    by_path = {
        "/api/v1/runs/{run_id}/setup_logs": "setup_logs",
        "/api/v1/batches/{id}/interactions": "interactions",
    }
    checked = []
    for path, item in schema["paths"].items():
        operation = item.get("get", {})
        documented = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
        if "cursor" not in documented:
            continue  # not a list
        if "{" in path and path not in by_path:
            continue  # a list of an object this test does not make
        url = next(u for u in lists if u.endswith(by_path[path])) if "{" in path else path
        response = api.get(url, {"bogus_filter": "1"})
        assert response.status_code == 400, path
        assert sorted(response.json()["details"]["valid"]) == sorted([*documented, "format"]), path
        checked.append(path)
    assert {"/api/v1/runs", "/api/v1/traces", "/api/v1/batches", *by_path} <= set(checked)
