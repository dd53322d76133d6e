"""A batch's priority and concurrency: taken from the upload form, checked, shown."""

import pytest
from django_tasks_db.models import DBTaskResult

from batches.models import Batch
from tests.batches.factories import csv_upload, post_batch
from tests.conftest import error_body

pytestmark = pytest.mark.django_db

ROWS = [("one", ""), ("two", "")]


def test_an_upload_takes_a_priority_and_a_concurrency_and_the_detail_shows_them(api):
    response = post_batch(api, csv_upload(ROWS), priority="high", concurrency="3")

    assert response.status_code == 202
    batch = Batch.objects.get(pk=response.json()["batch_id"])
    assert (batch.priority, batch.concurrency) == ("high", 3)
    detail = api.get(f"/api/v1/batches/{batch.pk}/").json()
    assert (detail["priority"], detail["concurrency"]) == ("high", 3)


def test_an_upload_without_them_is_normal_and_uncapped(api):
    response = post_batch(api, csv_upload(ROWS))

    detail = api.get(f"/api/v1/batches/{response.json()['batch_id']}/").json()
    assert (detail["priority"], detail["concurrency"]) == ("normal", None)


@pytest.mark.parametrize("priority", ["urgent", "HIGH", "0"])
def test_an_unknown_priority_is_a_400_naming_the_allowed_values_and_creates_nothing(api, priority):
    response = post_batch(api, csv_upload(ROWS), priority=priority)

    assert response.status_code == 400
    assert "priority must be one of: low, normal, high" in error_body(response)["error"]
    assert not Batch.objects.exists()
    assert not DBTaskResult.objects.exists()


@pytest.mark.parametrize("concurrency", ["0", "-1", "33", "two", "1.5"])
def test_a_concurrency_out_of_range_is_a_400_naming_the_range_and_creates_nothing(
    api, settings, concurrency
):
    settings.BATCH_CONCURRENCY_MAX = 32

    response = post_batch(api, csv_upload(ROWS), concurrency=concurrency)

    assert response.status_code == 400
    assert "concurrency must be a whole number from 1 to 32" in error_body(response)["error"]
    assert not Batch.objects.exists()


def test_a_dry_run_checks_them_too(api):
    response = post_batch(api, csv_upload(ROWS), query="?dry_run=true", concurrency="0")

    assert response.status_code == 400
    assert "concurrency" in error_body(response)["error"]
