import json

import pytest

from tests.conftest import error_body

pytestmark = pytest.mark.django_db


def test_an_unknown_api_url_is_a_json_404(api):
    response = api.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert error_body(response) == {"error": "Not Found."}


def test_an_unknown_run_is_a_json_404(api):
    response = api.get("/api/v1/runs/missing/")
    assert response.status_code == 404
    assert error_body(response) == {
        "error": "No run with run_id 'missing'.",
        "details": {"run_id": "missing"},
    }


def test_a_method_not_allowed_is_a_json_405(api):
    response = api.delete("/api/v1/runs/batch")
    assert response.status_code == 405
    assert error_body(response) == {"error": 'Method "DELETE" not allowed.'}


def test_an_unsupported_media_type_is_a_json_415(api):
    response = api.post("/api/v1/runs/batch", b"<runs/>", content_type="application/xml")
    assert response.status_code == 415
    assert response.json()["error"].startswith('Unsupported media type "application/xml"')


def test_malformed_json_is_a_json_400(api):
    response = api.post("/api/v1/runs/batch", b'{"runs": [', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"].startswith("Request body is not valid JSON")


def test_a_body_over_the_limit_is_a_json_413(api, settings):
    settings.MAX_REQUEST_BYTES = 1000
    body = b'{"runs": [' + b'{"x": "' + b"y" * 2000 + b'"}]}'
    response = api.post("/api/v1/runs/batch", body, content_type="application/json")
    assert response.status_code == 413
    assert error_body(response) == {"error": "Request body is larger than the limit of 1000 bytes."}


def test_a_bad_host_header_under_api_is_a_json_400(api):
    response = api.get("/api/v1/runs/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert error_body(response) == {"error": "Bad Request."}


def test_the_schema_and_the_docs_are_served(api):
    schema = api.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/runs/batch" in paths
    body = paths["/api/v1/runs/batch"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["properties"]["runs"]["items"] == {"$ref": "#/components/schemas/RunIn"}
    docs = api.get("/api/docs/")
    assert docs.status_code == 200
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/" in docs.content


def test_the_schema_and_the_docs_need_authentication(anonymous):
    for url in ("/api/schema/", "/api/docs/"):
        response = anonymous.get(url)
        assert response.status_code in (401, 403), url


def test_throttle_counters_live_in_the_database_shared_by_every_process(api, settings):
    from django.db import connection

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"batch": "100/minute"},
    }
    api.post("/api/v1/runs/batch", {"runs": []}, format="json")
    with connection.cursor() as cursor:
        cursor.execute("SELECT cache_key FROM batchsvc_cache")
        keys = [key for (key,) in cursor.fetchall()]
    assert any("throttle_batch" in key for key in keys)


def test_a_batch_over_djangos_default_body_limit_is_accepted(api, run_factory):
    # Django refuses bodies over 2.5 MB by default; a 1000-run batch can be larger.
    runs = [run_factory(context_json={"notes": "x" * 3000}) for _ in range(1000)]
    body = json.dumps({"runs": runs})
    assert len(body) > 2.5 * 1024 * 1024
    response = api.post("/api/v1/runs/batch", body, content_type="application/json")
    assert response.status_code == 201
