"""The upload form of POST /batches/: one serializer validates it and documents it."""

import pytest

from batches.engine.worker import batch_process
from batches.inputs import BatchUploadSerializer
from batches.models import Batch, Interaction
from tests.batches.factories import csv_upload, post_batch
from tests.support.stubs import Stub

pytestmark = pytest.mark.django_db

ROWS = [("What is 2+2?", "a"), ("And times 3?", "a")]
SEED_FORM = {
    "batchName": "Seed quiz",
    "aiProvider": "http",
    "lang": "fr",
    "searchProvider": "google",
    "applyOverrides": "true",
}
SEED_OPTIONS = {"lang": "fr", "search_provider": "google", "apply_overrides": True}


def refused(response, error):
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert not Batch.objects.exists()
    assert not Interaction.objects.exists()


def test_seed_004s_form_fields_are_read_as_name_processor_and_options(api, settings):
    settings.BATCH_HTTP_URL = "http://127.0.0.1:9/answer"
    response = post_batch(api, csv_upload(ROWS), **SEED_FORM)
    assert response.status_code == 202
    batch = Batch.objects.get()
    assert (batch.name, batch.processor, batch.options) == ("Seed quiz", "http", SEED_OPTIONS)


def test_the_option_fields_are_added_to_the_options_object(api):
    response = post_batch(api, csv_upload(ROWS), options='{"delay": 0}', lang="en")
    assert response.status_code == 202
    assert Batch.objects.get().options == {"delay": 0, "lang": "en"}


@pytest.mark.django_db(transaction=True)
def test_the_processor_receives_the_seed_options_with_every_item(api, settings):
    stub = Stub()
    try:
        settings.BATCH_HTTP_URL = stub.url + "/answer"
        response = post_batch(api, csv_upload(ROWS), **SEED_FORM)
        batch_process(batch_id=response.json()["batch_id"])
    finally:
        stub.stop()
    assert [request["json"]["options"] for request in stub.requests] == [SEED_OPTIONS] * 2
    assert Batch.objects.get().status == "processed"


def test_the_same_value_under_a_field_and_its_alias_is_accepted(api):
    response = post_batch(api, csv_upload(ROWS), name="Quiz", batchName="Quiz", processor="echo")
    assert response.status_code == 202
    assert Batch.objects.get().name == "Quiz"


def test_an_ai_provider_that_is_not_a_registered_processor_is_a_400_listing_them(api):
    refused(
        post_batch(api, csv_upload(ROWS), aiProvider="anthropic"),
        "Form field aiProvider names no registered processor ('anthropic'); "
        "choose one of: echo, http, openai.",
    )


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"name": "Quiz", "batchName": "Other"},
            "Form fields name and batchName are the same field and differ ('Quiz' and "
            "'Other'); give one of them.",
        ),
        (
            {"processor": "echo", "aiProvider": "openai"},
            "Form fields processor and aiProvider are the same field and differ ('echo' and "
            "'openai'); give one of them.",
        ),
        (
            {"lang": "fr", "options": '{"lang": "en"}'},
            "Form field lang and options.lang differ ('fr' and 'en'); give one of them.",
        ),
        (
            {"applyOverrides": "false", "options": '{"apply_overrides": true}'},
            "Form field applyOverrides and options.apply_overrides differ (False and True); "
            "give one of them.",
        ),
    ],
)
def test_a_field_given_under_both_names_with_different_values_is_a_400(api, fields, error):
    refused(post_batch(api, csv_upload(ROWS), **fields), error)


def test_unknown_form_fields_are_a_400_naming_them_and_listing_the_accepted_ones(api):
    refused(
        post_batch(api, csv_upload(ROWS), batch_name="Quiz", model="gpt"),
        "Unknown form fields batch_name, model; the accepted fields are: file, name, "
        "batchName, processor, aiProvider, options, lang, searchProvider, applyOverrides, "
        "priority, concurrency, dry_run.",
    )


def test_apply_overrides_reads_booleans_by_the_one_rule(api):
    assert post_batch(api, csv_upload(ROWS), applyOverrides="yes").status_code == 202
    assert Batch.objects.get().options == {"apply_overrides": True}
    Batch.objects.all().delete()
    refused(
        post_batch(api, csv_upload(ROWS), applyOverrides="maybe"),
        "Form field applyOverrides must be true or false (also 1/0, yes/no, on/off), not 'maybe'.",
    )


def test_a_field_given_twice_is_a_400(api):
    response = api.post(
        "/api/v1/batches/",
        {"file": csv_upload(ROWS), "name": ["One", "Two"]},
        format="multipart",
    )
    refused(response, "Form field name is given 2 times; give it once.")


def test_a_file_given_as_text_or_not_at_all_is_a_400(api):
    refused(
        api.post("/api/v1/batches/", {"file": "question\nq\n"}, format="multipart"),
        "Form field file must be a file (.csv or .xlsx), not text.",
    )
    refused(
        api.post("/api/v1/batches/", {"name": "x"}, format="multipart"),
        "Attach the spreadsheet (.csv or .xlsx) as the form field 'file'.",
    )


def test_a_name_longer_than_the_column_is_a_400(api):
    refused(
        post_batch(api, csv_upload(ROWS), batchName="x" * 256),
        "Form field batchName is longer than 255 characters.",
    )


def test_every_refusal_is_in_the_details_by_field(api):
    response = post_batch(api, csv_upload(ROWS), dry_run="maybe", applyOverrides="perhaps")
    assert response.status_code == 400
    assert set(response.json()["details"]) == {"dry_run", "applyOverrides"}


def test_the_schema_documents_the_fields_the_view_accepts(api):
    schema = api.get("/api/schema/?format=json").json()
    form = schema["components"]["schemas"]["BatchUploadRequest"]
    assert list(form["properties"]) == list(BatchUploadSerializer().fields)
    assert form["required"] == ["file"]
    assert form["properties"]["applyOverrides"]["type"] == "boolean"
