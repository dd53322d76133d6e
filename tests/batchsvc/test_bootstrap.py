import io

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def bootstrap() -> str:
    out = io.StringIO()
    call_command("bootstrap", "--base-url", "http://127.0.0.1:9999", stdout=out)
    return out.getvalue()


def test_it_creates_an_admin_and_a_token_once_and_says_how_to_log_in(client):
    first = bootstrap()
    admin = User.objects.get(is_superuser=True)
    token = Token.objects.get(user=admin)
    password = first.split("with password '")[1].split("'")[0]
    assert client.login(username=admin.username, password=password)
    assert f"Token {token.key}" in first
    assert "http://127.0.0.1:9999/admin/" in first

    second = bootstrap()
    assert "Created" not in second
    assert f"Token {token.key}" in second
    assert User.objects.count() == 1 and Token.objects.count() == 1
