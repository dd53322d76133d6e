"""An upload is refused whole, before anything is created, when its file is over
the size limit (413, as every body over its limit) or its processor's options are
outside their bounds (400 with the range)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from batches.models import Batch
from tests.batches.factories import csv_bytes, csv_upload, post_batch
from tests.conftest import error_body

pytestmark = pytest.mark.django_db

ROWS = [("one", ""), ("two", "")]


@pytest.mark.parametrize("query", ["", "?dry_run=true"])
def test_a_file_over_the_upload_limit_is_a_413_naming_the_limit(api, settings, query):
    content = csv_bytes(ROWS * 50)
    settings.BATCH_MAX_UPLOAD_BYTES = len(content) - 1
    upload = SimpleUploadedFile("questions.csv", content, content_type="text/csv")

    response = post_batch(api, upload, query=query)

    assert response.status_code == 413
    assert error_body(response) == {
        "error": f"The file is larger than the limit of {len(content) - 1} bytes "
        "(BATCH_MAX_UPLOAD_BYTES)."
    }
    assert Batch.objects.count() == 0


def test_a_file_of_exactly_the_limit_is_accepted(api, settings):
    content = csv_bytes(ROWS)
    settings.BATCH_MAX_UPLOAD_BYTES = len(content)
    upload = SimpleUploadedFile("questions.csv", content, content_type="text/csv")

    assert post_batch(api, upload).status_code == 202


@pytest.mark.parametrize("delay", ["11", "1e9", "-1", '"1"'])
def test_an_echo_delay_outside_its_bounds_is_refused_at_upload_with_the_range(api, delay):
    response = post_batch(api, csv_upload(ROWS), options=f'{{"delay": {delay}}}')

    assert response.status_code == 400
    assert error_body(response)["error"].startswith(
        "The echo processor's delay must be a number of seconds from 0 to 10, not "
    )
    assert Batch.objects.count() == 0


@pytest.mark.parametrize("delay", ["0", "10", "0.5"])
def test_an_echo_delay_within_its_bounds_is_kept_as_given(api, delay):
    response = post_batch(api, csv_upload(ROWS), options=f'{{"delay": {delay}}}')

    assert response.status_code == 202
    assert Batch.objects.get().options == {"delay": float(delay) if "." in delay else int(delay)}
