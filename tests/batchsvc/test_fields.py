import pytest
from django.contrib.auth.models import User

from batchsvc.api import fields
from batchsvc.api.errors import ApiError
from tests.batchsvc.conftest import UserSerializer
from tests.conftest import error_body
from traces.serializers import RunSerializer

pytestmark = pytest.mark.django_db

RUN_FIELDS = list(RunSerializer.Meta.fields)


def test_the_runs_list_returns_only_the_chosen_fields(api, stored_runs):
    runs = stored_runs(3)
    response = api.get("/api/v1/runs/?fields=run_id,status&ordering=created_at")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [set(r) for r in results] == [{"run_id", "status"}] * 3
    assert sorted(r["run_id"] for r in results) == sorted(r["run_id"] for r in runs)


def test_the_runs_list_keeps_paginating_and_filtering_with_fields(api, stored_runs):
    stored_runs(3)
    page = api.get("/api/v1/runs/?fields=run_id&page_size=2&status=running").json()
    assert len(page["results"]) == 2
    assert page["next"] is not None
    assert "fields=run_id" in page["next"]
    assert set(api.get(page["next"]).json()["results"][0]) == {"run_id"}


def test_a_run_detail_returns_only_the_chosen_fields(api, stored_runs):
    (run,) = stored_runs(1)
    response = api.get(f"/api/v1/runs/{run['run_id']}/?fields=agent_name,metrics_json")
    assert response.status_code == 200
    assert response.json() == {
        "agent_name": run["agent_name"],
        "metrics_json": run["metrics_json"],
    }


def test_the_parameter_may_be_repeated_and_spaced(api, stored_runs):
    (run,) = stored_runs(1)
    response = api.get(f"/api/v1/runs/{run['run_id']}/?fields=run_id,%20status&fields=job_type")
    assert set(response.json()) == {"run_id", "status", "job_type"}


def test_without_fields_every_field_is_returned(api, stored_runs):
    (run,) = stored_runs(1)
    assert list(api.get(f"/api/v1/runs/{run['run_id']}/").json()) == RUN_FIELDS


@pytest.mark.parametrize("path", ["/api/v1/runs/", "/api/v1/runs/some-run/"])
def test_an_unknown_field_is_a_400_naming_it_and_listing_the_valid_ones(api, path):
    # No run exists: the names are checked before the database is asked.
    response = api.get(f"{path}?fields=run_id,colour,size")
    assert response.status_code == 400
    assert error_body(response) == {
        "error": f"Unknown fields 'colour', 'size'; valid fields: {', '.join(RUN_FIELDS)}.",
        "details": {"unknown": ["colour", "size"], "valid": RUN_FIELDS},
    }


def test_an_unknown_field_is_refused_before_the_database_is_asked(
    alice_session, django_assert_num_queries
):
    with django_assert_num_queries(0):
        assert alice_session.get("/api/v1/runs/?fields=colour").status_code == 400


def test_an_empty_fields_parameter_is_a_400(api):
    response = api.get("/api/v1/runs/?fields=,")
    assert response.status_code == 400
    assert error_body(response) == {"error": "Query parameter fields must name at least one field."}


def test_writes_ignore_the_fields_parameter(api, run_factory):
    response = api.post("/api/v1/runs/?fields=run_id", run_factory(), format="json")
    assert response.status_code == 201
    assert list(response.json()) == RUN_FIELDS


def test_restrict_takes_unchosen_fields_out_before_anything_is_computed(alice):
    UserSerializer.computed = []
    many = fields.restrict(UserSerializer(User.objects.all(), many=True), ["username"])
    assert many.data == [{"username": "alice"}]
    one = fields.restrict(UserSerializer(alice), ["id", "username"])
    assert one.data == {"id": alice.pk, "username": "alice"}
    assert UserSerializer.computed == []


def test_restrict_refuses_an_unknown_name():
    with pytest.raises(ApiError, match="Unknown field 'nope'; valid fields: id, username"):
        fields.restrict(UserSerializer(), ["nope"])


def test_the_schema_documents_fields_on_get_endpoints_only(api):
    paths = api.get("/api/schema/?format=json").json()["paths"]

    def parameter_names(path, method):
        return [p["name"] for p in paths[path][method].get("parameters", [])]

    assert "fields" in parameter_names("/api/v1/runs", "get")
    assert "fields" in parameter_names("/api/v1/runs/{run_id}", "get")
    assert "fields" not in parameter_names("/api/v1/runs", "post")
    assert "fields" not in parameter_names("/api/v1/runs/{run_id}", "patch")
    documented = next(
        p for p in paths["/api/v1/runs"]["get"]["parameters"] if p["name"] == "fields"
    )
    assert "`run_id`" in documented["description"]
    # A file download is not serializer data: no ?fields= there.
    assert "fields" in parameter_names("/api/v1/batches/{id}", "get")
    assert "fields" not in parameter_names("/api/v1/batches/{id}/results", "get")
