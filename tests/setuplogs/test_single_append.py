import msgspec
import pytest

from setuplogs.models import LogEntry
from setuplogs.schemas import LogLineOut
from tests.conftest import error_body
from tests.setuplogs.conftest import batch_url, line, single_url

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("method", ["post", "patch"])
def test_one_line_is_appended_and_answered_201_with_its_seq(api, run, method):
    api.post(batch_url(run), {"logs": [line("first")]}, format="json")
    sent = line("second", level="warn", timestamp="2026-01-23T10:30:45Z")
    response = getattr(api, method)(single_url(run), sent, format="json")
    assert response.status_code == 201
    body = msgspec.json.decode(response.content, type=LogLineOut)
    assert (body.seq, body.level, body.message, body.client_id) == (
        2,
        "warning",
        "second",
        sent["client_id"],
    )
    assert body.timestamp == "2026-01-23T10:30:45Z"


def test_the_same_client_id_again_answers_200_with_the_stored_line(api, run):
    sent = line("once")
    first = api.post(single_url(run), sent, format="json")
    again = api.post(single_url(run), {**sent, "message": "changed"}, format="json")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert LogEntry.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"level": "info"}, "Log line not stored: message is required."),
        (
            {"message": "x", "level": "loud"},
            "Log line not stored: level must be one of debug, info, warning, error, critical, "
            "not 'loud'.",
        ),
        (
            {"message": "x", "timestamp": "soon"},
            "Log line not stored: timestamp: Invalid RFC3339 encoded datetime.",
        ),
        (
            {"message": "x" * 11},
            "Log line not stored: message is longer than the limit of 10 bytes.",
        ),
        ([1, 2], "Log line not stored: item must be a JSON object, not `array`."),
        (
            {"message": "nul\x00here"},
            "Log line not stored: message: must not contain the NUL character.",
        ),
        (
            {"msg": "x"},
            "Log line not stored: unknown key 'msg'; the keys are: message, level, timestamp, "
            "client_id.",
        ),
    ],
)
def test_an_invalid_line_is_a_400_saying_why_and_stores_nothing(api, run, settings, body, error):
    settings.LOG_MESSAGE_MAX = 10
    response = api.post(single_url(run), body, format="json")
    assert response.status_code == 400
    assert error_body(response) == {"error": error}
    assert LogEntry.objects.count() == 0


def test_an_unknown_run_is_a_404(api):
    response = api.post("/api/v1/runs/nope/setup_log", line(), format="json")
    assert response.status_code == 404
    assert response.json()["details"] == {"run_id": "nope"}


def test_the_single_and_the_batch_append_share_one_numbering(api, run):
    api.post(single_url(run), line("a"), format="json")
    api.post(batch_url(run), {"logs": [line("b"), line("c")]}, format="json")
    api.patch(single_url(run), line("d"), format="json")
    assert list(LogEntry.objects.values_list("seq", "message")) == [
        (1, "a"),
        (2, "b"),
        (3, "c"),
        (4, "d"),
    ]


def test_appending_one_line_needs_authentication(anonymous, run):
    assert anonymous.post(single_url(run), line(), format="json").status_code == 401


def test_a_form_instead_of_json_is_a_415(api, run):
    response = api.post(single_url(run), {"message": "x"})
    assert response.status_code == 415
    assert LogEntry.objects.count() == 0
