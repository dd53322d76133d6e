"""Every refusal of every operation in the schema is one error body: a top-level
``error`` sentence, optional ``details``, and the response's request id; nothing
else (a refused all-or-nothing batch keeps its per-item outcomes beside them)."""

import re

import pytest

from tests.batches.factories import make_batch

pytestmark = pytest.mark.django_db

MISSING = {"run_id": "no-such-run", "id": "00000000-0000-0000-0000-000000000000"}


@pytest.fixture
def schema(api):
    return api.get("/api/schema/?format=json").json()


@pytest.fixture
def ids(api, alice, run_factory, trace_root):
    run = run_factory()
    api.post("/api/v1/runs/", run, format="json")
    trace = api.post(
        "/api/v1/traces/write", {"trace_data": "x", "file_name": "a.txt"}, format="json"
    )
    batch = make_batch(alice, [("hello", "a")])
    return {"run_id": run["run_id"], "trace": str(trace.json()["id"]), "batch": str(batch.pk)}


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "patch", "put", "delete"):
                yield path, method, operation


def fill(path: str, ids: dict) -> str:
    path = path.replace("{run_id}", ids["run_id"])
    return path.replace("{id}", ids["trace" if path.startswith("/api/v1/traces/") else "batch"])


def assert_error_format(response, what):
    assert response["Content-Type"].startswith("application/json"), what
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], what
    assert body.get("request_id") == response["X-Request-ID"], what
    allowed = {"error", "details", "request_id"}
    if set(body) - allowed:  # only a refused batch carries its outcomes beside them
        assert {"runs", "errors", "rolled_back"} <= set(body), what


def refusals(client, anonymous, schema, ids, settings):
    """(what, response) for each way each operation can be refused."""
    for path, method, operation in operations(schema):
        url = fill(path, ids)
        call = getattr(client, method)
        yield f"anonymous {method} {path}", getattr(anonymous, method)(url)
        other = "delete" if method != "delete" else "put"
        yield f"{other} {path}", getattr(client, other)(url)
        for name in re.findall(r"{(\w+)}", path):
            missing = fill(path.replace(f"{{{name}}}", MISSING[name]), ids)
            if name == "id" and path.startswith("/api/v1/traces/"):
                missing = path.replace("{id}", "999999")
            yield f"missing {method} {path}", call(missing)
        query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
        if method == "get" and "cursor" in query:
            yield f"unknown parameter {path}", call(url, {"bogus": "1"})
            yield f"bad cursor {path}", call(url, {"cursor": "nonsense"})
        if method == "get":
            yield f"format {path}", call(f"{url}?format=nope")
        if "requestBody" in operation:
            yield f"not JSON {method} {path}", call(url, b"{", content_type="application/json")
            yield f"xml {method} {path}", call(url, b"<a/>", content_type="application/xml")
            settings.MAX_REQUEST_BYTES = 10
            big = b'{"x": "' + b"y" * 100 + b'"}'
            yield f"too large {method} {path}", call(url, big, content_type="application/json")
            settings.MAX_REQUEST_BYTES = 16 * 1024 * 1024


def test_every_refusal_of_every_operation_is_one_error_body(api, anonymous, schema, ids, settings):
    statuses = set()
    seen = 0
    for what, response in refusals(api, anonymous, schema, ids, settings):
        if response.status_code < 400:
            continue  # a DELETE or PUT some path takes, say
        assert_error_format(response, what)
        statuses.add(response.status_code)
        seen += 1
    assert seen > 100
    assert {400, 401, 404, 405, 406, 413, 415} <= statuses


def test_a_refused_transactional_batch_is_an_error_body_with_its_outcomes(api, run_factory):
    runs = [run_factory(), run_factory(job_type="")]
    response = api.post("/api/v1/runs/batch-transactional", {"runs": runs}, format="json")
    assert response.status_code == 400
    assert_error_format(response, "rolled back")


def test_an_unauthenticated_request_is_told_so_in_the_error_format(anonymous):
    response = anonymous.get("/api/v1/runs/")
    assert response.status_code == 401
    assert_error_format(response, "anonymous")
