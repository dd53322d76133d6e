"""Who may call /openai/v1/, and OpenAI's error shape there (only there)."""

import httpx
import openai
import pytest
from rest_framework.authtoken.models import Token

from tests.support.openai_sdk import chat_line, sdk_client, upload

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_sdk_s_bearer_token_is_accepted(sdk):
    assert upload(sdk, [chat_line("q")]).purpose == "batch"


def test_the_api_s_token_header_is_accepted_too(live_server, alice):
    token = Token.objects.create(user=alice).key

    response = httpx.get(
        f"{live_server.url}/openai/v1/batches", headers={"Authorization": f"Token {token}"}
    )

    assert response.status_code == 200
    assert response.json() == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


def test_a_wrong_token_is_an_authentication_error_in_openai_s_shape(live_server, db):
    with (
        sdk_client(live_server, "not-a-token") as client,
        pytest.raises(openai.AuthenticationError) as refused,
    ):
        client.batches.list()

    assert refused.value.status_code == 401
    assert refused.value.body == {
        "message": "Invalid token.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }


def test_no_token_at_all_is_refused(live_server, db):
    response = httpx.get(f"{live_server.url}/openai/v1/files")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_url_under_openai_v1_is_openai_s_404(live_server, db):
    response = httpx.get(f"{live_server.url}/openai/v1/models")

    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["code"] == "unknown_url"


def test_the_rest_of_the_api_keeps_its_own_error_shape(live_server, alice):
    token = Token.objects.create(user=alice).key

    response = httpx.get(
        f"{live_server.url}/api/v1/batches/not-a-batch/",
        headers={"Authorization": f"Token {token}"},
    )

    assert response.status_code == 404
    assert isinstance(response.json()["error"], str)
