"""One rule for every route: the trailing slash is optional, never a redirect."""

import pytest

from traces.models import Run

pytestmark = pytest.mark.django_db

RUN = "slashes-run"


@pytest.fixture
def stored(api, run_factory):
    api.post("/api/v1/runs", run_factory(run_id=RUN), format="json")


ROUTES = [
    ("get", "/api/v1/runs", None),
    ("get", f"/api/v1/runs/{RUN}", None),
    ("post", "/api/v1/runs/batch", {"runs": [{}]}),
    ("post", "/api/v1/runs/batch-transactional", {"runs": [{}]}),
    ("get", f"/api/v1/runs/{RUN}/setup_logs", None),
    ("post", f"/api/v1/runs/{RUN}/setup_logs", {"logs": [{"message": "x", "level": "loud"}]}),
    ("post", f"/api/v1/runs/{RUN}/setup_log", {"message": "x", "level": "loud"}),
    ("get", "/api/v1/traces", None),
    ("post", "/api/v1/traces/write", {"trace_data": "x", "file_name": "../bad"}),
    ("post", "/api/v1/traces/write-batch", {"files": [{"trace_data": "x", "file_name": "../b"}]}),
    ("post", "/api/v1/batch/get", {"resource_type": "runs", "ids": [RUN]}),
    ("get", "/api/v1/batches", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_each_route_answers_the_same_with_and_without_its_slash(api, stored, method, path, body):
    send = getattr(api, method)
    without = send(path, body, format="json") if body is not None else send(path)
    with_slash = send(f"{path}/", body, format="json") if body is not None else send(f"{path}/")
    assert without.status_code == with_slash.status_code
    assert without.status_code not in (301, 302, 308, 404, 405)
    ignore = {"processed_at", "next", "previous", "summary", "request_id"}  # summary: timing
    strip = lambda data: {k: v for k, v in data.items() if k not in ignore}  # noqa: E731
    assert strip(without.json()) == strip(with_slash.json())


def test_a_run_named_like_an_action_is_still_a_run(api, run_factory):
    # The router orders collection actions first: "batch" cannot be a run_id's URL...
    response = api.post("/api/v1/runs/batch/", {"runs": [run_factory(run_id="x")]}, format="json")
    assert response.status_code == 201
    assert Run.objects.filter(run_id="x").exists()


def test_the_schema_spells_every_path_without_a_trailing_slash(api):
    paths = api.get("/api/schema/", {"format": "json"}).json()["paths"]
    assert [path for path in paths if path.endswith("/")] == []
    assert "/api/v1/runs/batch" in paths and "/api/v1/runs" in paths
