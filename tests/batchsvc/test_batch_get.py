import ast
from pathlib import Path

import msgspec
import pytest
from django.core.cache import cache

import batchsvc.api
from batchsvc.api import resources
from batchsvc.api.batch_get import BatchGetResponse
from tests.batchsvc.conftest import UserSerializer
from tests.conftest import error_body

pytestmark = pytest.mark.django_db

URL = "/api/v1/batch/get"


def batch_get(client, **body):
    return client.post(URL, body, format="json")


def test_runs_come_back_in_request_order_with_a_repeated_id_answered_each_time(api, stored_runs):
    first, second, third = stored_runs(3)
    ids = [third["run_id"], first["run_id"], third["run_id"], second["run_id"]]
    response = batch_get(api, resource_type="runs", ids=ids)
    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["results"]] == ids
    assert [item["data"]["run_id"] for item in body["results"]] == ids
    assert body["results"][0]["data"]["event_id"] == third["event_id"]
    assert body["results"][0]["data"]["metrics_json"] == third["metrics_json"]
    assert body["total_requested"] == 4
    assert body["total_succeeded"] == 4
    assert body["total_failed"] == 0


def test_a_missing_run_is_a_404_item_and_the_others_still_succeed(api, stored_runs):
    (run,) = stored_runs(1)
    response = batch_get(api, resource_type="runs", ids=["no-such-run", run["run_id"]])
    assert response.status_code == 200
    body = response.json()
    assert body["results"][0] == {
        "id": "no-such-run",
        "status": "error",
        "status_code": 404,
        "data": None,
        "error": "Not found.",
    }
    assert body["results"][1]["status"] == "success"
    assert body["results"][1]["status_code"] == 200
    assert body["results"][1]["error"] is None
    assert (body["total_requested"], body["total_succeeded"], body["total_failed"]) == (2, 1, 1)


def test_the_response_matches_its_documented_schema(api, stored_runs):
    (run,) = stored_runs(1)
    response = batch_get(api, resource_type="runs", ids=[run["run_id"], "missing"])
    decoded = msgspec.json.decode(response.content, type=BatchGetResponse)
    assert decoded.processed_at.tzinfo is not None
    assert [item.status for item in decoded.results] == ["success", "error"]


def test_fields_limit_each_object_to_the_chosen_fields(api, stored_runs):
    runs = stored_runs(2)
    response = batch_get(
        api,
        resource_type="runs",
        ids=[r["run_id"] for r in runs],
        fields=["status", "run_id", "start_time"],
    )
    assert response.status_code == 200
    for item, run in zip(response.json()["results"], runs, strict=True):
        assert item["data"] == {
            "run_id": run["run_id"],
            "status": "running",
            "start_time": "2026-01-28T10:30:00Z",
        }


def test_an_object_the_caller_may_not_see_is_a_404_item_exactly_like_a_missing_one(
    api, alice, bob, users_resource
):
    missing = bob.pk + 1000
    response = batch_get(api, resource_type="test_users", ids=[bob.pk, missing, alice.pk])
    results = response.json()["results"]
    hidden, absent, own = results
    assert {**hidden, "id": None} == {**absent, "id": None}
    assert hidden["status_code"] == 404
    assert hidden["data"] is None
    assert own["status_code"] == 200
    assert own["data"]["username"] == "alice"


def test_fields_that_were_not_chosen_are_never_computed(api, alice, users_resource):
    response = batch_get(api, resource_type="test_users", ids=[alice.pk], fields=["username"])
    assert response.json()["results"][0]["data"] == {"username": "alice"}
    assert UserSerializer.computed == []
    batch_get(api, resource_type="test_users", ids=[alice.pk])
    assert UserSerializer.computed == [alice.pk]


def test_integer_ids_may_come_as_strings_and_are_echoed_as_sent(api, alice, users_resource):
    response = batch_get(api, resource_type="test_users", ids=[str(alice.pk), alice.pk])
    results = response.json()["results"]
    assert [item["id"] for item in results] == [str(alice.pk), alice.pk]
    assert [item["status_code"] for item in results] == [200, 200]


def test_uuid_ids_are_matched_in_any_spelling(api, stored_runs, runs_by_event_resource):
    (run,) = stored_runs(1)
    ids = [run["event_id"].upper(), "00000000-0000-0000-0000-000000000000"]
    response = batch_get(api, resource_type="test_runs_by_event", ids=ids)
    results = response.json()["results"]
    assert results[0]["data"] == {
        "event_id": run["event_id"],
        "run_id": run["run_id"],
        "status": "running",
    }
    assert results[1]["status_code"] == 404


@pytest.mark.parametrize("count", [1, 100])
def test_runs_cost_two_queries_whatever_the_number_of_ids(
    alice_session, stored_runs, django_assert_num_queries, count
):
    ids = [run["run_id"] for run in stored_runs(count)]
    with django_assert_num_queries(2):  # the runs, then their owners
        response = batch_get(alice_session, resource_type="runs", ids=ids)
    assert response.json()["total_succeeded"] == count


@pytest.mark.parametrize("count", [1, 100])
def test_a_scoped_resource_costs_one_query_whatever_the_number_of_ids(
    alice_session, alice, users_resource, django_assert_num_queries, count
):
    ids = [alice.pk] * (count // 2) + list(range(10**6, 10**6 + count - count // 2))
    with django_assert_num_queries(1):
        response = batch_get(alice_session, resource_type="test_users", ids=ids)
    assert response.json()["total_succeeded"] == count // 2


def test_the_limit_on_ids_is_the_batch_get_max_ids_setting(api, stored_runs, settings):
    settings.BATCH_GET_MAX_IDS = 3
    ids = [run["run_id"] for run in stored_runs(3)]
    assert batch_get(api, resource_type="runs", ids=ids).status_code == 200
    response = batch_get(api, resource_type="runs", ids=[*ids, "one-more"])
    assert response.status_code == 400
    assert error_body(response) == {
        "error": "ids array holds 4 items; the limit is 3 per request.",
        "details": {"limit": 3, "received": 4},
    }


def test_the_default_limit_is_100_ids(api):
    response = batch_get(api, resource_type="runs", ids=[f"run-{n}" for n in range(101)])
    assert response.status_code == 400
    assert response.json()["details"] == {"limit": 100, "received": 101}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            {"resource_type": "nope", "ids": ["a"]},
            f"Unknown resource_type 'nope'; valid resource types: {', '.join(resources.names())}.",
        ),
        ({"ids": ["a"]}, "The batch GET request is not valid: resource_type is required."),
        (
            {"resource_type": 5, "ids": ["a"]},
            "The batch GET request is not valid: resource_type: Expected `str`, got `int`.",
        ),
        ({"resource_type": "runs"}, "ids array is required."),
        ({"resource_type": "runs", "ids": "a,b"}, "ids array is required."),
        (
            {"resource_type": "runs", "ids": []},
            "ids array is required and must hold at least one item.",
        ),
        (
            {"resource_type": "runs", "ids": ["a", {"x": 1}]},
            "The batch GET request is not valid: ids[1]: Expected `int | str`, got `object`.",
        ),
        (
            {"resource_type": "runs", "ids": ["a", 7]},
            "Bad id for resource_type 'runs': ids[1]: Expected `str`, got `int`.",
        ),
        (
            {"resource_type": "runs", "ids": ["a", ""]},
            "Bad id for resource_type 'runs': ids[1]: Expected `str` of length >= 1.",
        ),
        (
            {"resource_type": "runs", "ids": ["a"], "fields": "run_id"},
            "The batch GET request is not valid: fields: Expected `array | null`, got `str`.",
        ),
        (
            {"resource_type": "runs", "ids": ["a"], "fields": []},
            "fields must name at least one field.",
        ),
        (
            {"resource_type": "runs", "ids": ["a"], "field": ["run_id"]},
            "The batch GET request is not valid: Object contains unknown field `field`.",
        ),
    ],
)
def test_a_malformed_request_is_a_400_saying_what_is_wrong(api, body, error):
    response = batch_get(api, **body)
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_an_unknown_field_is_a_400_naming_it_and_listing_the_valid_ones(api):
    response = batch_get(api, resource_type="runs", ids=["a"], fields=["run_id", "colour"])
    assert response.status_code == 400
    body = response.json()
    assert body["error"].startswith("Unknown field 'colour'; valid fields: event_id, run_id, ")
    assert body["details"]["unknown"] == ["colour"]
    assert "status" in body["details"]["valid"]


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("seven", "Bad id for resource_type 'test_users': ids[1]: Expected `int`, got `str`."),
        (0, "Bad id for resource_type 'test_users': ids[1]: Expected `int` >= 1."),
        (
            2**63,
            "Bad id for resource_type 'test_users': ids[1]: Expected `int` <= 9223372036854775807.",
        ),
        (True, "The batch GET request is not valid: ids[1]: Expected `int | str`, got `bool`."),
        ("1e3", "Bad id for resource_type 'test_users': ids[1]: Expected `int`, got `str`."),
        ("1.0", "Bad id for resource_type 'test_users': ids[1]: Expected `int`, got `str`."),
        (" 7", "Bad id for resource_type 'test_users': ids[1]: Expected `int`, got `str`."),
    ],
)
def test_a_bad_integer_id_is_a_400_naming_it(api, users_resource, bad, error):
    response = batch_get(api, resource_type="test_users", ids=[1, bad])
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_a_bad_uuid_is_a_400_naming_it(api, runs_by_event_resource):
    response = batch_get(api, resource_type="test_runs_by_event", ids=["not-a-uuid"])
    assert response.status_code == 400
    assert response.json()["error"] == (
        "Bad id for resource_type 'test_runs_by_event': ids[0]: Invalid UUID."
    )


def test_the_valid_resource_types_come_from_the_registry(api, users_resource):
    response = batch_get(api, resource_type="nope", ids=[1])
    valid = response.json()["details"]["valid"]
    assert "test_users" in valid and valid == resources.names()
    resources.unregister("test_users")
    assert batch_get(api, resource_type="test_users", ids=[1]).status_code == 400


def test_a_body_that_is_not_an_object_is_a_400(api):
    response = api.post(URL, [1, 2], format="json")
    assert response.status_code == 400
    assert response.json()["error"] == (
        "The request body must be a JSON object with resource_type and ids."
    )


def test_an_anonymous_caller_is_refused(anonymous):
    response = batch_get(anonymous, resource_type="runs", ids=["a"])
    assert response.status_code == 401


def test_the_batch_get_is_throttled_with_the_batch_scope(api, settings):
    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"batch": "2/minute"},
    }
    statuses = [batch_get(api, resource_type="runs", ids=["a"]).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    cache.clear()


def test_registering_a_name_twice_is_refused():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="'runs' is already registered"):
        resources.register("runs", serializer_class=UserSerializer, visible_to=lambda u: None)


def test_the_schema_documents_the_batch_get_with_examples(api, users_resource):
    operation = api.get("/api/schema/?format=json").json()["paths"][URL]["post"]
    body = operation["requestBody"]["content"]["application/json"]
    # One shape per resource type: its ids of the type it takes, its field names.
    shapes = {s["properties"]["resource_type"]["enum"][0]: s for s in body["schema"]["oneOf"]}
    assert list(shapes) == resources.names()
    assert "test_users" in resources.names()
    users = shapes["test_users"]["properties"]
    assert users["ids"]["maxItems"] == 100
    assert users["ids"]["items"] == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    assert users["fields"]["items"]["enum"] == ["id", "username", "is_staff", "expensive"]
    assert shapes["batches"]["properties"]["ids"]["items"] == {"type": "string", "format": "uuid"}
    request_example = next(iter(body["examples"].values()))["value"]
    assert request_example["resource_type"] == "runs"
    ok = operation["responses"]["200"]["content"]["application/json"]
    assert ok["schema"] == {"$ref": "#/components/schemas/BatchGetResponse"}
    response_example = next(iter(ok["examples"].values()))["value"]
    msgspec.convert(response_example, BatchGetResponse)
    assert "400" in operation["responses"]


@pytest.mark.parametrize("module", ["batch_get", "fields", "resources", "views"])
def test_the_batch_get_code_imports_no_app(module):
    tree = ast.parse((Path(batchsvc.api.__file__).parent / f"{module}.py").read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else []
        )
    }
    assert "batchsvc" in imported  # the walk does see the imports
    assert not imported & {"traces", "setuplogs", "batches"}
