"""One rule for booleans as text, wherever they come from."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from batchsvc.api.flags import parse_bool
from batchsvc.settings import env_bool
from tests.batches.factories import csv_upload, post_batch

SPELLINGS = [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("On", True)]
SPELLINGS += [("false", False), ("0", False), ("No", False), ("off", False)]


@pytest.mark.parametrize(("text", "value"), SPELLINGS)
def test_every_place_reads_the_same_spellings(text, value, monkeypatch):
    assert parse_bool(text, default=not value) is value
    monkeypatch.setenv("SOME_FLAG", text)
    assert env_bool("SOME_FLAG", not value) is value


def test_absent_or_empty_is_the_default_and_anything_else_is_refused(monkeypatch):
    assert parse_bool(None, default=True) is True
    assert parse_bool("", default=False) is False
    with pytest.raises(ValueError, match="must be true or false"):
        parse_bool("maybe", default=False)
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG must be true or false"):
        env_bool("SOME_FLAG", False)


@pytest.mark.django_db
def test_query_and_form_flags_refuse_what_is_not_a_boolean(api):
    query = api.post("/api/v1/runs/batch?dry_run=maybe", {"runs": [{}]}, format="json")
    assert query.status_code == 400
    assert query.json()["error"].startswith("Query parameter dry_run must be true or false")
    form = post_batch(api, csv_upload([("q", "c")]), dry_run="maybe")
    assert form.status_code == 400
    assert form.json()["error"].startswith("Form field dry_run must be true or false")
    assert post_batch(api, csv_upload([("q", "c")]), dry_run="on").status_code == 200
