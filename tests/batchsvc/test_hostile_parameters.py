"""Text that breaks formatting or encodings, sent through every query parameter and
every path parameter of every operation in the schema, gets a 4xx or a 2xx: never
a 5xx. (A filter value with % once reached a %-template and answered 500.)"""

import re

import pytest

from tests.batches.factories import make_batch

pytestmark = pytest.mark.django_db

# As they appear in a URL: % itself, {} and %s templates, NUL, a lone surrogate's
# UTF-8 spelling (not valid UTF-8), an overlong encoding, a character beyond the BMP.
HOSTILE = [
    "%25",
    "x%25",
    "%25s%25s",
    "%25(name)s",
    "%7B%7D",
    "%7B0%7D",
    "%7Bname%7D",
    "%00",
    "%ED%A0%80",
    "%C0%AF",
    "%F0%9F%98%80",
    "%FF",
]
BODIES = {"post": {}, "patch": {}, "put": {}}


@pytest.fixture
def schema(api):
    return api.get("/api/schema/?format=json").json()


@pytest.fixture
def real_ids(api, alice, run_factory, trace_root):
    run = run_factory()
    api.post("/api/v1/runs/", run, format="json")
    trace = {"trace_data": "x", "file_name": "a.txt"}
    trace_id = api.post("/api/v1/traces/write", trace, format="json").json()["id"]
    batch = make_batch(alice, [("hello", "a")])
    return {"run_id": run["run_id"], "trace": str(trace_id), "batch": str(batch.pk)}


def real_path(path: str, ids: dict) -> str:
    path = path.replace("{run_id}", ids["run_id"])
    if path.startswith("/api/v1/traces/"):
        return path.replace("{id}", ids["trace"])
    return path.replace("{id}", ids["batch"])


def send(api, method: str, url: str):
    body = BODIES.get(method)
    if body is None:
        return getattr(api, method)(url)
    return getattr(api, method)(url, body, format="json")


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "patch", "put", "delete"):
                yield path, method, operation


def test_hostile_text_in_any_query_parameter_is_never_a_server_error(api, schema, real_ids):
    answered = []
    for path, method, operation in operations(schema):
        url = real_path(path, real_ids)
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
        for name in [*names, "format", "bogus"]:
            for value in HOSTILE:
                response = send(api, method, f"{url}?{name}={value}")
                answered.append((method, url, name, value, response.status_code))
    server_errors = [answer for answer in answered if answer[-1] >= 500]
    assert server_errors == []
    assert len({(method, url) for method, url, *_ in answered}) >= 25


def test_hostile_text_in_any_path_parameter_is_never_a_server_error(api, schema, real_ids):
    answered = []
    for path, method, _operation in operations(schema):
        for name in re.findall(r"{(\w+)}", path):
            for value in HOSTILE:
                url = real_path(path.replace(f"{{{name}}}", value), real_ids)
                answered.append((method, url, send(api, method, url).status_code))
    server_errors = [answer for answer in answered if answer[-1] >= 500]
    assert server_errors == []
    assert any("/runs/" in url for _, url, _ in answered)
