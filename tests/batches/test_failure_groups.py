"""Failed items grouped by cause, and retried all at once or a group at a time, with
each retry kept as an attempt and the batch's first start and pace kept."""

import datetime as dt

import pytest
from django.utils import timezone

from batches.failures import group_key, normalised
from batches.models import Batch, BatchStatus, InteractionStatus
from tests.batches.factories import make_batch

pytestmark = pytest.mark.django_db

TOO_LONG = (
    'openai processor: HTTP 400 Bad Request: {"error": {"message": "This model\'s maximum '
    'context length is 8192 tokens, you requested {n} tokens"}}.'
)
TIMEOUT = "openai processor: no answer within the timeout."


def failed_batch(owner, errors: list[str], succeeded: int = 1) -> Batch:
    """A batch that ran: ``succeeded`` items succeeded, then one failed item per error."""
    batch = make_batch(owner, [(f"q{n}", "") for n in range(succeeded + len(errors))])
    items = list(batch.interactions.order_by("row_number"))
    now = timezone.now()
    for item in items[:succeeded]:
        item.status, item.finished_at = InteractionStatus.SUCCEEDED, now
        item.save()
    for seconds, (item, error) in enumerate(zip(items[succeeded:], errors, strict=True)):
        item.status, item.error = InteractionStatus.FAILED, error
        item.error_group, item.finished_at = group_key(error), now + dt.timedelta(seconds=seconds)
        item.save()
    started = now - dt.timedelta(minutes=10)
    Batch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.COMPLETED_WITH_ERRORS,
        started_at=started,
        resumed_at=started,
        finished_at=now - dt.timedelta(minutes=8),
        processed_items=succeeded,
        failed_items=len(errors),
    )
    batch.refresh_from_db()
    return batch


def test_errors_that_differ_only_in_numbers_ids_and_quoted_values_share_a_group():
    assert group_key(TOO_LONG.replace("{n}", "9000")) == group_key(TOO_LONG.replace("{n}", "12"))
    assert group_key("Unknown model 'gpt-17'") == group_key("Unknown model 'x-2'")
    assert group_key("HTTP 503: req_abc123 busy") == group_key("HTTP 503: req_zz9988 busy")
    assert group_key("HTTP 400 Bad Request") != group_key("HTTP 503 Service Unavailable")
    assert group_key(TIMEOUT) != group_key(TOO_LONG)
    assert normalised("row 12 after 3.5 s") == "row <n> after <n> s"


def test_the_detail_lists_the_failure_groups_largest_first_with_an_example(api, alice):
    errors = [TOO_LONG.replace("{n}", str(9000 + n)) for n in range(3)] + [TIMEOUT] * 2
    batch = failed_batch(alice, errors)

    groups = api.get(f"/api/v1/batches/{batch.pk}/").json()["failure_groups"]

    assert [(group["count"], group["key"]) for group in groups] == [
        (3, group_key(TOO_LONG.replace("{n}", "1"))),
        (2, group_key(TIMEOUT)),
    ]
    assert groups[0]["error"] == normalised(TOO_LONG.replace("{n}", "1"))
    example = batch.interactions.get(pk=groups[0]["example_item"])
    assert example.status == InteractionStatus.FAILED and "maximum context" in example.error
    assert groups[0]["first_seen"] < groups[0]["last_seen"]


def test_a_retry_of_one_group_requeues_only_its_items_and_says_how_many(api, alice):
    batch = failed_batch(alice, [TOO_LONG.replace("{n}", "1"), TIMEOUT, TIMEOUT])

    response = api.post(
        f"/api/v1/batches/{batch.pk}/retry-failed", {"group": group_key(TIMEOUT)}, format="json"
    )

    assert response.status_code == 202
    assert response.json()["requeued"] == 2
    assert response.json()["status"] == "queued"
    statuses = dict(batch.interactions.values_list("error", "status").exclude(error=""))
    assert statuses == {TOO_LONG.replace("{n}", "1"): InteractionStatus.FAILED}
    assert batch.interactions.filter(status=InteractionStatus.PENDING).count() == 2


def test_a_retry_keeps_the_first_start_and_records_an_attempt(api, alice):
    batch = failed_batch(alice, [TIMEOUT, TIMEOUT])
    first_start = batch.started_at

    api.post(f"/api/v1/batches/{batch.pk}/retry-failed")
    body = api.get(f"/api/v1/batches/{batch.pk}/").json()

    batch.refresh_from_db()
    assert batch.started_at == first_start
    assert [(a["requeued"], a["group"], a["by"]) for a in body["attempts"]] == [(2, "", "alice")]
    # Two minutes of processing before the retry, however long it waited since.
    assert body["pace"]["elapsed_seconds"] == 120.0
    batch.mark_processing()
    batch.refresh_from_db()
    assert batch.started_at == first_start


def test_a_retry_of_a_group_without_failed_items_is_a_409_saying_so(api, alice):
    batch = failed_batch(alice, [TIMEOUT])

    response = api.post(
        f"/api/v1/batches/{batch.pk}/retry-failed", {"group": "0123456789ab"}, format="json"
    )

    assert response.status_code == 409
    assert response.json()["error"] == (
        "The batch has no failed items in the group '0123456789ab' to retry."
    )
    assert not batch.attempts.exists()


def test_a_retry_body_with_an_unknown_key_is_a_400_naming_it(api, alice):
    batch = failed_batch(alice, [TIMEOUT])

    response = api.post(f"/api/v1/batches/{batch.pk}/retry-failed", {"groups": "x"}, format="json")

    assert response.status_code == 400
    assert "groups" in response.json()["error"]
    assert batch.interactions.filter(status=InteractionStatus.FAILED).count() == 1


def test_the_admin_retries_one_group_and_reports_how_many(admin_client, alice):
    batch = failed_batch(alice, [TOO_LONG.replace("{n}", "5"), TIMEOUT, TIMEOUT])
    page = admin_client.get(f"/admin/batches/batch/{batch.pk}/change/")
    assert b"retry this group (2)" in page.content

    response = admin_client.post(
        f"/admin/batches/batch/{batch.pk}/retry-failed/", {"group": group_key(TIMEOUT)}, follow=True
    )

    messages = [str(message) for message in response.context["messages"]]
    assert messages == [f"2 failed items of group {group_key(TIMEOUT)} of 1 batch queued again."]
    assert batch.interactions.filter(status=InteractionStatus.PENDING).count() == 2
