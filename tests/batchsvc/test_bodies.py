"""Every endpoint that takes a JSON body answers a missing one with a 400, and one
declared as nothing with a 415, in the one error format: never a 500."""

import pytest

from tests.conftest import error_body

pytestmark = pytest.mark.django_db

SENTENCE = (
    "Request body is empty or not declared as JSON; send a JSON object with "
    "Content-Type: application/json."
)


@pytest.fixture
def json_endpoints(api, run_factory):
    run = run_factory()
    api.post("/api/v1/runs/", run, format="json")
    runs = f"/api/v1/runs/{run['run_id']}"
    return [
        ("post", "/api/v1/runs/"),
        ("post", "/api/v1/runs/batch"),
        ("post", "/api/v1/runs/batch-transactional"),
        ("patch", runs),
        ("post", f"{runs}/setup_log"),
        ("patch", f"{runs}/setup_log"),
        ("post", f"{runs}/setup_logs"),
        ("post", "/api/v1/traces/write"),
        ("post", "/api/v1/traces/write-batch"),
    ]


def test_a_request_without_a_body_is_a_400(api, json_endpoints):
    for method, url in json_endpoints:
        response = getattr(api, method)(url)
        assert response.status_code == 400, (method, url)
        assert error_body(response) == {"error": SENTENCE}


def test_a_body_declared_as_nothing_is_a_415(api, json_endpoints):
    for method, url in json_endpoints:
        response = api.generic(method.upper(), url, b'{"runs": []}', content_type="")
        assert response.status_code == 415, (method, url)
        assert error_body(response)["error"].startswith('Unsupported media type ""')
