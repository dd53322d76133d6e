"""What an upload may ask of its processor: only the options it takes, and only a
processor this server is configured for. Refusals are 400s that create nothing."""

import pytest
from django.core.management import CommandError, call_command
from django_tasks_db.models import DBTaskResult

from batches.models import Batch, Interaction
from batches.processors.echo import EchoProcessor
from batches.processors.openai import OpenAIProcessor
from tests.batches.factories import csv_bytes, csv_upload, post_batch
from tests.conftest import error_body

pytestmark = pytest.mark.django_db

ROWS = [("one", ""), ("two", "")]


def nothing_created() -> bool:
    counts = Batch.objects.count(), Interaction.objects.count(), DBTaskResult.objects.count()
    return counts == (0, 0, 0)


def test_an_option_the_processor_does_not_take_is_a_400_listing_those_it_takes(api):
    response = post_batch(api, csv_upload(ROWS), options='{"language": "en"}')

    assert response.status_code == 400
    body = error_body(response)
    assert body["error"].startswith("The echo processor takes no option 'language'; it takes: ")
    for name in EchoProcessor.accepts:
        assert f"{name}: " in body["error"]
    assert body["details"] == {
        "unknown_options": ["language"],
        "accepted_options": EchoProcessor.accepts,
    }
    assert nothing_created()


def test_the_openai_processor_lists_its_own_options(api, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"

    response = post_batch(
        api, csv_upload(ROWS), processor="openai", options='{"temperature": 0, "modle": "x"}'
    )

    assert response.status_code == 400
    body = error_body(response)
    assert "takes no options 'temperature', 'modle'" in body["error"]
    assert set(body["details"]["accepted_options"]) == set(OpenAIProcessor.accepts)
    assert nothing_created()


def test_a_dry_run_refuses_them_too(api):
    response = post_batch(api, csv_upload(ROWS), query="?dry_run=true", options='{"speed": 1}')

    assert response.status_code == 400
    assert "takes no option 'speed'" in error_body(response)["error"]


def test_options_it_takes_are_accepted(api):
    response = post_batch(api, csv_upload(ROWS), options='{"delay": 0, "lang": "en"}')

    assert response.status_code == 202
    assert Batch.objects.get().options == {"delay": 0, "lang": "en"}


def test_the_schema_lists_each_processors_options(api):
    schema = api.get("/api/schema/?format=json").json()
    form = schema["components"]["schemas"]["BatchUploadRequest"]["properties"]["options"]

    assert "echo: lang, search_provider, apply_overrides, delay" in form["description"]
    assert (
        "openai: lang, search_provider, apply_overrides, requests_per_minute, tokens_per_minute, "
        "model, system_prompt" in (form["description"])
    )


@pytest.mark.parametrize(
    ("processor", "configure", "error"),
    [
        (
            "openai",
            {"OPENAI_BASE_URL": "https://api.openai.com/v1", "OPENAI_API_KEY": ""},
            "The openai processor is not configured (OPENAI_API_KEY is empty, and "
            "api.openai.com needs a key).",
        ),
        (
            "openai",
            {"OPENAI_BASE_URL": ""},
            "The openai processor is not configured (OPENAI_BASE_URL is empty).",
        ),
        (
            "http",
            {"BATCH_HTTP_URL": ""},
            "The http processor is not configured (BATCH_HTTP_URL is empty).",
        ),
    ],
)
def test_an_unconfigured_processor_is_refused_at_upload_with_the_missing_setting(
    api, settings, processor, configure, error
):
    for name, value in configure.items():
        setattr(settings, name, value)

    response = post_batch(api, csv_upload(ROWS), processor=processor)

    assert response.status_code == 400
    assert error_body(response)["error"] == error
    assert nothing_created()


def test_the_admin_form_refuses_an_unconfigured_processor_with_the_same_sentence(
    admin_client, settings
):
    settings.OPENAI_BASE_URL, settings.OPENAI_API_KEY = "https://api.openai.com/v1", ""
    upload = csv_upload(ROWS)

    page = admin_client.post(
        "/admin/batches/batch/add/",
        {"file": upload, "processor": "openai", "options": "{}", "priority": "normal"},
    )

    assert page.status_code == 200  # the form again, with the sentence
    assert "OPENAI_API_KEY is empty, and api.openai.com needs a key" in page.content.decode()
    assert nothing_created()


def test_the_admin_form_refuses_an_unknown_option_and_lists_those_taken(admin_client):
    page = admin_client.post(
        "/admin/batches/batch/add/",
        {
            "file": csv_upload(ROWS),
            "processor": "echo",
            "options": '{"language": "en"}',
            "priority": "normal",
        },
    )

    assert page.status_code == 200
    text = page.content.decode()
    assert "The echo processor takes no option &#x27;language&#x27;; it takes: " in text
    assert "delay: seconds per item" in text
    assert nothing_created()


def test_the_import_command_refuses_an_unconfigured_processor(alice, settings, tmp_path):
    settings.BATCH_HTTP_URL = ""
    path = tmp_path / "q.csv"
    path.write_bytes(csv_bytes(ROWS))

    with pytest.raises(CommandError, match=r"BATCH_HTTP_URL is empty"):
        call_command("import_batch", str(path), "--owner", "alice", "--processor", "http")
    assert nothing_created()
