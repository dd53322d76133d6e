"""Idempotency-Key on uploads, with Stripe's semantics: the same request gets the same
answer, a different request with the key a 422, a request racing the first a 409."""

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django_tasks_db.models import DBTaskResult

from batches import services
from batches.models import Batch, Interaction
from tests.batches.factories import csv_bytes, csv_upload, make_batch, post_batch
from tests.conftest import error_body

ROWS = [("What is 2+2?", "a"), ("And times 3?", "a"), ("", "b"), ("Capital of France?", "")]
KEY = {"HTTP_IDEMPOTENCY_KEY": "upload-1"}


def batch_rows():
    return sorted(Interaction.objects.values_list("batch_id", "row_number"))


@pytest.mark.django_db
def test_the_same_request_with_the_same_key_gets_the_same_answer(
    api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = post_batch(api, csv_upload(ROWS), headers=KEY, name="Quiz", lang="en")
        again = post_batch(api, csv_upload(ROWS), headers=KEY, name="Quiz", lang="en")
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.json()["skipped_rows"] == [{"row": 4, "error": "no question"}]
    assert (first.get("Idempotent-Replayed"), again["Idempotent-Replayed"]) == (None, "true")
    assert again["Location"] == first["Location"]
    assert Batch.objects.count() == 1
    assert Interaction.objects.count() == 3
    assert DBTaskResult.objects.count() == 1


@pytest.mark.django_db
def test_the_same_request_spelled_differently_is_still_the_same_request(api):
    first = post_batch(
        api, csv_upload(ROWS), headers=KEY, name="Quiz", options='{"delay": 0, "lang": "en"}'
    )
    again = post_batch(
        api, csv_upload(ROWS), headers=KEY, batchName="Quiz", options='{"lang": "en", "delay": 0}'
    )
    assert again.status_code == 202
    assert again.json()["batch_id"] == first.json()["batch_id"]
    assert again["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        {"upload": csv_upload(ROWS[:2])},
        {"upload": csv_upload(ROWS, name="other.csv")},
        {"name": "Another quiz"},
        {"processor": "http"},
        {"options": '{"delay": 1}'},
        {"lang": "fr"},
        {"applyOverrides": "true"},
    ],
    ids=["file", "file name", "name", "processor", "options", "lang", "applyOverrides"],
)
def test_the_same_key_with_a_different_request_is_a_422_and_changes_nothing(api, settings, change):
    settings.BATCH_HTTP_URL = "http://127.0.0.1:9/answer"
    first = post_batch(api, csv_upload(ROWS), headers=KEY, name="Quiz")
    before = batch_rows()
    fields = {"name": "Quiz", **change}
    response = post_batch(api, fields.pop("upload", csv_upload(ROWS)), headers=KEY, **fields)
    assert response.status_code == 422
    assert error_body(response) == {
        "error": "This Idempotency-Key was already used for a different request (another "
        "file, name, processor or options); use a new key for a new request.",
        "details": {"batch_id": first.json()["batch_id"]},
    }
    assert Batch.objects.count() == 1
    assert batch_rows() == before


@pytest.mark.django_db
def test_keys_are_per_owner(api, bob):
    make_batch(bob, ROWS, idempotency_key="shared-key", name="Bob's")
    response = post_batch(api, csv_upload(ROWS), headers={"HTTP_IDEMPOTENCY_KEY": "shared-key"})
    assert response.status_code == 202
    assert "Idempotent-Replayed" not in response
    assert Batch.objects.count() == 2


@pytest.mark.django_db
def test_a_batch_made_before_fingerprints_were_kept_answers_its_key(api, alice):
    earlier = make_batch(alice, ROWS, idempotency_key="upload-1")
    Batch.objects.filter(pk=earlier.pk).update(request_fingerprint="")
    response = post_batch(api, csv_upload(ROWS[:1]), headers=KEY)
    assert (response.status_code, response.json()["batch_id"]) == (202, str(earlier.pk))


def pretend_not_committed_yet(monkeypatch):
    """The key lookup misses the earlier batch once, as it does when the other
    request with the key has not committed yet."""
    looked_up = []
    by_key = services.by_key

    def not_found_the_first_time(owner, key):
        looked_up.append(key)
        return None if len(looked_up) == 1 else by_key(owner, key)

    monkeypatch.setattr(services, "by_key", not_found_the_first_time)


@pytest.mark.django_db
def test_a_request_racing_the_first_with_its_key_is_a_409_and_makes_nothing(
    api, alice, monkeypatch
):
    earlier = make_batch(alice, ROWS, idempotency_key="upload-1")
    pretend_not_committed_yet(monkeypatch)
    response = post_batch(api, csv_upload(ROWS), headers=KEY)
    assert response.status_code == 409
    assert error_body(response) == {
        "error": "A request with this Idempotency-Key was being processed at the same time; "
        "send it again to get its answer.",
        "details": {"batch_id": str(earlier.pk)},
    }
    assert response["Retry-After"] == "1"
    assert Batch.objects.count() == 1
    assert Interaction.objects.count() == 3


@pytest.mark.django_db
def test_a_different_request_racing_the_first_with_its_key_is_a_422(api, alice, monkeypatch):
    make_batch(alice, ROWS, idempotency_key="upload-1")
    pretend_not_committed_yet(monkeypatch)
    response = post_batch(api, csv_upload(ROWS[:1]), headers=KEY)
    assert response.status_code == 422
    assert Batch.objects.count() == 1


# Real threads against a real server ----------------------------------------------


def upload(url, token, key, data=None):
    with httpx.Client(base_url=url, timeout=60) as http:
        response = http.post(
            "/api/v1/batches/",
            files={"file": ("questions.csv", data or csv_bytes(ROWS))},
            data={"name": "Quiz"},
            headers={"Authorization": f"Token {token}", "Idempotency-Key": key},
        )
    return response


@pytest.fixture
def both_read_the_key(monkeypatch):
    """Two requests are held once they have looked the key up, so both try to create;
    ``both_read_the_key()`` lets requests through unheld again."""
    both_reading = threading.Barrier(2, timeout=20)
    upload_read = services.upload_read

    def held(**kwargs):
        both_reading.wait()
        return upload_read(**kwargs)

    monkeypatch.setattr(services, "upload_read", held)
    return lambda: monkeypatch.setattr(services, "upload_read", upload_read)


@pytest.mark.django_db(transaction=True)
def test_two_requests_with_one_key_at_once_make_one_whole_batch_and_a_409(
    live_server, token, both_read_the_key
):
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda _: upload(live_server.url, token, "k-1"), range(2)))

    assert sorted(response.status_code for response in answers) == [202, 409]
    created = next(response for response in answers if response.status_code == 202)
    conflict = next(response for response in answers if response.status_code == 409)
    assert conflict.json()["details"]["batch_id"] == created.json()["batch_id"]
    assert conflict.headers["Retry-After"] == "1"
    batch = Batch.objects.get()
    assert batch.interactions.count() == batch.total_items == 3

    both_read_the_key()
    retried = upload(live_server.url, token, "k-1")
    assert retried.status_code == 202
    assert retried.json() == created.json()
    assert retried.headers["Idempotent-Replayed"] == "true"


@pytest.mark.django_db(transaction=True)
def test_many_requests_with_one_key_at_once_get_one_batch_and_no_500(live_server, token):
    data = csv_bytes([(f"Question {n}?", f"c{n % 7}") for n in range(2000)])
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: upload(live_server.url, token, "k-2", data), range(8)))

    statuses = [response.status_code for response in answers]
    assert set(statuses) <= {202, 409}, statuses
    accepted = [response for response in answers if response.status_code == 202]
    created = [r for r in accepted if "Idempotent-Replayed" not in r.headers]
    assert len(created) == 1
    assert {r.json()["batch_id"] for r in accepted} == {created[0].json()["batch_id"]}
    batch = Batch.objects.get()
    assert batch.interactions.count() == batch.total_items == 2000


@pytest.mark.django_db(transaction=True)
def test_a_different_request_at_the_same_time_with_the_key_is_a_422(
    live_server, token, both_read_the_key
):
    files = [csv_bytes(ROWS), csv_bytes(ROWS[:1])]
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = list(pool.map(lambda data: upload(live_server.url, token, "k-3", data), files))

    assert sorted(response.status_code for response in answers) == [202, 422]
    assert Batch.objects.count() == 1
