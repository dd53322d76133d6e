import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def agent_token(*args) -> str:
    out = io.StringIO()
    call_command("agent_token", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def status_with(token: str) -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api.get("/api/v1/runs/").status_code


def test_it_creates_an_ordinary_user_and_a_working_token_once():
    token = agent_token("nightly-agent")
    user = get_user_model().objects.get(username="nightly-agent")
    assert not user.is_staff and not user.has_usable_password()
    assert status_with(token) == 200
    assert agent_token("nightly-agent") == token  # the same token, asked again


def test_rotating_replaces_the_token_and_the_old_one_stops_working():
    old = agent_token("nightly-agent")
    new = agent_token("nightly-agent", "--rotate")
    assert new != old
    assert (status_with(old), status_with(new)) == (401, 200)


def test_an_existing_user_keeps_what_it_is(alice):
    agent_token("alice")
    alice.refresh_from_db()
    assert alice.check_password("alice-password")


def test_a_deactivated_user_gets_no_token(alice):
    alice.is_active = False
    alice.save()
    with pytest.raises(CommandError, match="deactivated"):
        agent_token("alice")


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "This field cannot be blank."),
        ("bad name!", "Enter a valid username."),
        ("x" * 151, "Ensure this value has at most 150 characters"),
    ],
)
def test_a_name_the_username_rules_refuse_creates_nobody(name, says):
    with pytest.raises(CommandError, match=f"is not a valid username: {says}"):
        agent_token(name)
    assert not get_user_model().objects.exists()


@pytest.mark.parametrize("rotate", [[], ["--rotate"]])
def test_a_staff_users_token_is_printed_only_with_force(staff, rotate):
    with pytest.raises(CommandError, match=r"'staff' is staff.*pass --force"):
        agent_token("staff", *rotate)
    assert not Token.objects.filter(user=staff).exists()
    assert status_with(agent_token("staff", "--force", *rotate)) == 200
