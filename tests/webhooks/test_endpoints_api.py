"""The webhooks API: registering, reading, rotating and deleting endpoints, and
every kind of bad input."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tests.conftest import error_body
from webhooks.models import Endpoint

pytestmark = pytest.mark.django_db

URL = "/api/v1/webhooks"
EVENTS = ["batch.completed", "batch.failed"]


def register(api, url, events=EVENTS):
    return api.post(URL, {"url": url, "events": events}, format="json")


@pytest.fixture
def public_dns(monkeypatch):
    """hooks.example.com resolves to a public address, without asking the network."""
    import socket

    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == "hooks.example.com":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]
        if host == "sneaky.example.com":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port)),
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_registering_an_endpoint_answers_201_with_its_secret_shown_once(api, public_dns):
    response = register(api, "https://hooks.example.com/batchsvc")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["url"] == "https://hooks.example.com/batchsvc"
    assert body["events"] == EVENTS
    assert body["enabled"] is True
    detail = api.get(f"{URL}/{body['id']}").json()
    listed = api.get(URL).json()["results"]
    assert "secret" not in detail and all("secret" not in item for item in listed)
    assert [item["id"] for item in listed] == [body["id"]]


def test_events_given_twice_are_kept_once_in_their_order(api, public_dns):
    events = ["batch.cancelled", "batch.expired", "batch.cancelled"]
    response = register(api, "https://hooks.example.com/", events)
    assert response.json()["events"] == ["batch.cancelled", "batch.expired"]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://hooks.example.com/x", "url must be an http or https URL, not 'ftp://"),
        ("hooks.example.com/x", "url must be an http or https URL"),
        ("javascript:alert(1)", "url must be an http or https URL"),
        ("", "url must be an http or https URL."),
        (None, "url must be an http or https URL."),
        (42, "url must be an http or https URL."),
        ("https://user:pw@hooks.example.com/", "url must not hold a user name or password."),
        ("https://hooks.example.com:99999/", "url has a port that is not a number"),
    ],
)
def test_a_url_that_is_not_an_http_or_https_url_is_a_400_naming_url(api, public_dns, url, says):
    response = register(api, url)
    assert response.status_code == 400
    body = error_body(response)
    assert body["error"].startswith(says)
    assert list(body["details"]) == ["url"]
    assert not Endpoint.objects.exists()


def test_a_url_over_2000_characters_is_a_400_saying_so(api, public_dns):
    url = "https://hooks.example.com/" + "a" * (2001 - len("https://hooks.example.com/"))
    response = register(api, url)
    assert response.status_code == 400
    assert error_body(response)["error"] == "url is longer than 2,000 characters."
    assert register(api, url[:2000]).status_code == 201


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:8000/hook", "127.0.0.1, a loopback address"),
        ("http://localhost/hook", "a loopback address"),
        ("http://[::1]/hook", "::1, a loopback address"),
        ("http://[::ffff:127.0.0.1]/hook", "a loopback address"),
        ("http://10.1.2.3/hook", "10.1.2.3, a private address"),
        ("http://192.168.1.20/hook", "192.168.1.20, a private address"),
        ("https://172.16.0.1/hook", "172.16.0.1, a private address"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254, a link-local address"),
        ("http://[fe80::1]/hook", "fe80::1, a link-local address"),
        ("http://0.0.0.0/hook", "0.0.0.0, a private address"),
        ("http://100.64.0.1/hook", "100.64.0.1, a reserved address"),
        ("https://sneaky.example.com/hook", "10.0.0.7, a private address"),
    ],
)
def test_a_url_resolving_to_a_refused_address_is_a_400_naming_it(api, public_dns, url, kind):
    response = register(api, url)
    assert response.status_code == 400
    error = error_body(response)["error"]
    assert kind in error
    assert error.endswith("webhooks are sent to public addresses only.")
    assert not Endpoint.objects.exists()


def test_private_addresses_are_let_through_when_the_setting_allows_them(api, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    assert register(api, "http://127.0.0.1:9/hook").status_code == 201


def test_a_host_that_does_not_resolve_is_a_400(api):
    response = register(api, "https://nowhere.invalid/hook")
    assert response.status_code == 400
    assert (
        error_body(response)["error"]
        == "url's host nowhere.invalid does not resolve to an address."
    )


@pytest.mark.parametrize(
    ("events", "says"),
    [
        (None, "events must be a list of one or more of: batch.completed, batch.failed"),
        ([], "events must be a list of one or more of"),
        ("batch.completed", "events must be a list of one or more of"),
        (["batch.finished"], "events names unknown event types ['batch.finished']"),
        (["batch.completed", 3], "events names unknown event types [3]"),
    ],
)
def test_missing_or_unknown_events_are_a_400_naming_events(api, public_dns, events, says):
    response = register(api, "https://hooks.example.com/", events)
    assert response.status_code == 400
    body = error_body(response)
    assert body["error"].startswith(says)
    assert list(body["details"]) == ["events"]


@pytest.mark.parametrize("body", [["https://hooks.example.com/"], {"url": "x", "colour": "red"}])
def test_a_body_that_is_not_an_object_of_url_and_events_is_a_400(api, body):
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    assert error_body(response)["error"] == (
        "The body must be a JSON object with the fields url and events."
    )


def test_registering_needs_a_token(anonymous):
    assert anonymous.post(URL, {"url": "x", "events": EVENTS}, format="json").status_code == 401


@pytest.fixture
def bobs_endpoint(bob, public_dns):
    from webhooks.services import endpoint_create

    return endpoint_create(owner=bob, url="https://hooks.example.com/bob", events=EVENTS)


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("delete", ""), ("get", "/deliveries"), ("post", "/rotate-secret")],
)
def test_another_owners_endpoint_is_a_404_like_a_missing_one(api, bobs_endpoint, method, suffix):
    theirs = getattr(api, method)(f"{URL}/{bobs_endpoint.pk}{suffix}")
    missing = getattr(api, method)(f"{URL}/00000000-0000-0000-0000-000000000000{suffix}")
    assert theirs.status_code == missing.status_code == 404
    assert error_body(theirs) == error_body(missing)
    assert api.get(URL).json()["results"] == []
    bobs_endpoint.refresh_from_db()  # still there, secret unchanged


def test_staff_see_every_owners_endpoints(staff, bobs_endpoint):
    client = APIClient()
    client.force_authenticate(staff)
    assert [e["id"] for e in client.get(URL).json()["results"]] == [str(bobs_endpoint.pk)]


def test_deleting_an_endpoint_answers_204_and_it_is_gone(api, public_dns):
    created = register(api, "https://hooks.example.com/").json()
    assert api.delete(f"{URL}/{created['id']}").status_code == 204
    assert api.get(f"{URL}/{created['id']}").status_code == 404


def test_rotating_the_secret_shows_the_new_one_and_keeps_the_old_for_the_overlap(
    api, public_dns, settings
):
    settings.WEBHOOKS_ROTATION_OVERLAP = 3600
    created = register(api, "https://hooks.example.com/").json()
    response = api.post(f"{URL}/{created['id']}/rotate-secret")
    assert response.status_code == 200
    rotated = response.json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    endpoint = Endpoint.objects.get(pk=created["id"])
    now = timezone.now()
    assert endpoint.secrets(now=now) == [rotated["secret"], created["secret"]]
    assert endpoint.secrets(now=now + timedelta(seconds=3601)) == [rotated["secret"]]
    detail = api.get(f"{URL}/{created['id']}").json()
    assert detail["previous_secret_expires_at"] is not None and "secret" not in detail


def test_an_endpoint_has_no_deliveries_until_a_batch_ends(api, public_dns):
    created = register(api, "https://hooks.example.com/").json()
    response = api.get(f"{URL}/{created['id']}/deliveries")
    assert response.status_code == 200
    assert response.json()["results"] == []
