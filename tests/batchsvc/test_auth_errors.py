"""A credential problem on a page that is not a plain API endpoint (the schema, the
Swagger page, the admin) is answered like any other, never with a 500."""

import pytest
from django.test import Client

from tests.conftest import error_body

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}
# (headers, query) for each way a client gets its credentials wrong.
BAD_CREDENTIALS = {
    "malformed token, JSON wanted": ({"HTTP_AUTHORIZATION": "Token a b", **JSON}, ""),
    "unknown token, JSON wanted": ({"HTTP_AUTHORIZATION": "Token nosuchkey", **JSON}, ""),
    "bare Token header": ({"HTTP_AUTHORIZATION": "Token"}, ""),
    "bare Token header, JSON wanted": ({"HTTP_AUTHORIZATION": "Token", **JSON}, ""),
    "malformed token, ?format=openapi": ({"HTTP_AUTHORIZATION": "Token a b"}, "?format=openapi"),
    "bare Token header, ?format=openapi": ({"HTTP_AUTHORIZATION": "Token"}, "?format=openapi"),
}
VARIANTS = [pytest.param(*value, id=name) for name, value in BAD_CREDENTIALS.items()]


@pytest.fixture
def plain_client():
    # The default test client raises a view's exception in the test; this one
    # answers it as the server would, so that a 500 is seen as a 500.
    return Client(raise_request_exception=False)


@pytest.mark.parametrize("path", ["/api/docs/", "/api/schema/"])
@pytest.mark.parametrize(("headers", "query"), VARIANTS)
def test_bad_credentials_on_the_docs_and_the_schema_are_a_json_4xx(
    plain_client, path, headers, query
):
    response = plain_client.get(path + query, **headers)

    assert response.status_code in (401, 403, 406)
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"].endswith(".")


def test_a_bad_token_on_the_docs_says_what_is_wrong_with_it(plain_client):
    response = plain_client.get("/api/docs/", HTTP_AUTHORIZATION="Token")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert error_body(response) == {"error": "Invalid token header. No credentials provided."}


def test_a_format_the_page_does_not_offer_is_a_406_that_names_those_it_does(api):
    response = api.get("/api/schema/?format=openapi")

    assert response.status_code == 406
    assert error_body(response) == {
        "error": "?format=openapi is not offered here; the formats are: json, yaml."
    }


@pytest.mark.parametrize(("headers", "query"), VARIANTS)
def test_the_admin_sends_a_client_with_bad_credentials_to_its_login_page(
    plain_client, headers, query
):
    # The admin reads sessions, not tokens: a token header, good or bad, is no
    # credential there, so the client is anonymous.
    response = plain_client.get("/admin/" + query, **headers)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize(("headers", "query"), VARIANTS)
def test_a_signed_in_admin_is_not_disturbed_by_a_bad_token_header(
    plain_client, staff, headers, query
):
    plain_client.force_login(staff)

    response = plain_client.get("/admin/" + query, **headers)

    assert response.status_code == 200
    assert b"Site administration" in response.content
