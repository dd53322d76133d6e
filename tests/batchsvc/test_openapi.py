"""The schema at /api/schema/ says what the server does: its refusals in the one
error format, parameters with their real formats and bounds, answers that match
what ?fields= returns, and links from each answer that gives an id to the
operations that take it."""

import json

import pytest

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def schema(api):
    return api.get("/api/schema/?format=json").json()


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def operation(schema, name):
    return dict(operations(schema))[name]


def parameter(schema, name, parameter_name):
    (found,) = [p for p in operation(schema, name)["parameters"] if p["name"] == parameter_name]
    return found["schema"]


def test_every_operation_answers_its_refusals_and_outages_in_the_one_error_format(schema):
    error = {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["schemas"]["Error"]["required"] == ["error"]
    for name, op in operations(schema):
        for code in ("4XX", "5XX"):
            assert op["responses"][code]["content"]["application/json"]["schema"] == error, name
    refused = operation(schema, "POST /api/v1/runs/batch-transactional")["responses"]["400"]
    assert refused["content"]["application/json"]["schema"] == {
        "anyOf": [{"$ref": "#/components/schemas/RunBatchResult"}, error]
    }


def test_path_parameters_have_the_formats_the_server_takes(schema):
    run_id = parameter(schema, "GET /api/v1/runs/{run_id}", "run_id")
    assert run_id["pattern"] == "^[^/\\x00]+$"
    assert run_id["not"] == {"enum": [".", ".."]}
    for name in ("GET /api/v1/runs/{run_id}/setup_logs", "POST /api/v1/runs/{run_id}/setup_log"):
        assert parameter(schema, name, "run_id") == run_id
    assert parameter(schema, "GET /api/v1/traces/{id}", "id") == {
        "type": "integer",
        "minimum": 1,
        "maximum": 2**63 - 1,
    }
    for action in ("", "/interactions", "/results"):
        assert parameter(schema, f"GET /api/v1/batches/{{id}}{action}", "id") == {
            "type": "string",
            "format": "uuid",
        }


def test_query_parameters_have_their_bounds_and_choices(schema):
    runs = "GET /api/v1/runs"
    assert parameter(schema, runs, "page_size") == {
        "type": "integer",
        "minimum": 1,
        "maximum": 1000,
    }
    assert "-start_time" in parameter(schema, runs, "ordering")["enum"]
    fields = parameter(schema, runs, "fields")
    assert fields["type"] == "array" and "run_id" in fields["items"]["enum"]
    logs = "GET /api/v1/runs/{run_id}/setup_logs"
    assert parameter(schema, logs, "tail") == {"type": "integer", "minimum": 1, "maximum": 10**6}
    assert parameter(schema, logs, "after")["minimum"] == 0
    assert parameter(schema, logs, "level")["pattern"].startswith("^(debug|info|")
    interactions = [
        p["name"] for p in operation(schema, "GET /api/v1/batches/{id}/interactions")["parameters"]
    ]
    assert sorted(interactions) == ["chat_id", "cursor", "fields", "id", "page_size", "status"]


def test_answers_to_a_field_selection_require_no_field(schema):
    detail = operation(schema, "GET /api/v1/runs/{run_id}")["responses"]["200"]
    ref = detail["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/RunFields"
    components = schema["components"]["schemas"]
    assert "required" not in components["RunFields"]
    assert components["RunFields"]["properties"] == components["Run"]["properties"]
    page = components["PaginatedRunListFields"]["properties"]["results"]
    assert page["items"] == {"$ref": "#/components/schemas/RunFields"}
    created = operation(schema, "POST /api/v1/runs")["responses"]["201"]
    assert created["content"]["application/json"]["schema"]["$ref"].endswith("/Run")


def test_no_nullable_value_is_a_oneof_that_null_matches_twice(schema):
    assert '"oneOf": [{}, {"type": "null"}]' not in json.dumps(schema)


def test_links_lead_from_a_new_batch_to_everything_done_with_it(schema):
    ids = {name: op["operationId"] for name, op in operations(schema)}
    for created, where in (
        ("POST /api/v1/batches", ("202", "$response.body#/batch_id")),
        ("GET /api/v1/batches", ("200", "$response.body#/results/0/id")),
    ):
        code, value = where
        found = operation(schema, created)["responses"][code]["links"]
        targets = {link["operationId"] for link in found.values()}
        assert targets == {
            ids["GET /api/v1/batches/{id}"],
            ids["GET /api/v1/batches/{id}/interactions"],
            ids["GET /api/v1/batches/{id}/results"],
            ids["POST /api/v1/batches/{id}/cancel"],
            ids["POST /api/v1/batches/{id}/retry-failed"],
        }
        assert {json.dumps(link["parameters"]) for link in found.values()} == {
            json.dumps({"id": value})
        }


def test_links_lead_from_a_new_run_and_trace_file_to_their_operations(schema):
    run = operation(schema, "POST /api/v1/runs")["responses"]["201"]["links"]
    assert run["GetRun"]["parameters"] == {"run_id": "$response.body#/run_id"}
    assert set(run) == {"GetRun", "ChangeRun", "AppendLogLine", "AppendLogLines", "ListLogLines"}
    batch = operation(schema, "POST /api/v1/runs/batch")["responses"]["201"]["links"]
    assert batch["GetRun"]["parameters"] == {"run_id": "$response.body#/runs/0/run_id"}
    trace = operation(schema, "POST /api/v1/traces/write")["responses"]["201"]["links"]
    assert trace["GetContent"]["parameters"] == {"id": "$response.body#/id"}
    assert "x-batchsvc-links" not in json.dumps(schema)
