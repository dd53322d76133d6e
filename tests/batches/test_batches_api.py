import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tasks_db.models import DBTaskResult
from openpyxl import load_workbook

from batches.models import Batch, BatchStatus, Interaction, InteractionStatus
from tests.batches.factories import csv_upload, make_batch, post_batch, xlsx_bytes
from tests.conftest import error_body

pytestmark = pytest.mark.django_db

ROWS = [("What is 2+2?", "a"), ("And times 3?", "a"), ("Capital of France?", "")]


def queued_tasks(batch_id):
    return DBTaskResult.objects.filter(
        status="READY", args_kwargs__kwargs__batch_id=str(batch_id)
    ).count()


def test_an_upload_creates_a_queued_batch_with_one_interaction_per_row_and_queues_it(
    api, alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_batch(api, csv_upload(ROWS), name="Quiz", options='{"delay": 0}')

    assert response.status_code == 202
    body = response.json()
    assert body == {
        "batch_id": body["batch_id"],
        "status": "queued",
        "total_items": 3,
        "skipped_count": 0,
        "skipped_rows": [],
    }
    batch = Batch.objects.get(pk=body["batch_id"])
    assert (batch.owner, batch.name, batch.processor, batch.options) == (
        alice,
        "Quiz",
        "echo",
        {"delay": 0},
    )
    assert batch.source_name == "questions.csv"
    items = list(batch.interactions.order_by("row_number"))
    assert [(i.row_number, i.chat_id, i.input["question"]) for i in items] == [
        (2, "a", "What is 2+2?"),
        (3, "a", "And times 3?"),
        (4, "", "Capital of France?"),
    ]
    assert items[0].conversation == items[1].conversation != items[2].conversation
    assert {i.status for i in items} == {InteractionStatus.PENDING}
    assert queued_tasks(batch.pk) == 1


def test_an_xlsx_upload_keeps_its_other_columns_in_the_input(api):
    data = xlsx_bytes(
        [("Hi?", "c1", "https://x.test", "fr")], ("Question ", "CHAT_ID", "url", "lang")
    )
    upload = io.BytesIO(data)
    upload.name = "sheet.xlsx"
    response = post_batch(api, upload)
    assert response.status_code == 202
    item = Interaction.objects.get()
    assert item.input == {"question": "Hi?", "chat_id": "c1", "url": "https://x.test", "lang": "fr"}


def test_a_seed_spreadsheet_is_read_with_its_column_names_and_groups_by_chat_id(api):
    data = xlsx_bytes(
        [("First?", "c1", "https://x.test/a"), ("Then?", "c1", None), ("Alone?", None, None)],
        ("REDACTEDQUESTION", "chatId", "URL"),
    )
    upload = io.BytesIO(data)
    upload.name = "seed.xlsx"
    response = post_batch(api, upload)
    assert response.status_code == 202
    batch = Batch.objects.get()
    assert batch.columns == ["question", "chat_id", "url"]
    items = list(batch.interactions.order_by("row_number"))
    assert [(i.chat_id, i.input["question"]) for i in items] == [
        ("c1", "First?"),
        ("c1", "Then?"),
        ("", "Alone?"),
    ]
    assert items[0].conversation == items[1].conversation != items[2].conversation


def test_rows_without_a_question_are_skipped_and_reported_in_the_answer_and_the_batch(api):
    rows = [("One?", "a"), ("", "a"), ("Two?", "b"), ("", ""), ("", "c")]
    response = post_batch(api, csv_upload(rows))
    assert response.status_code == 202
    body = response.json()
    skipped = [{"row": 3, "error": "no question"}, {"row": 6, "error": "no question"}]
    assert (body["total_items"], body["skipped_count"], body["skipped_rows"]) == (2, 2, skipped)
    batch = Batch.objects.get()
    assert sorted(batch.interactions.values_list("row_number", flat=True)) == [2, 4]
    detail = api.get(f"/api/v1/batches/{batch.pk}/").json()
    assert (detail["total_items"], detail["skipped_count"], detail["skipped_rows"]) == (
        2,
        2,
        skipped,
    )


def test_the_dry_run_reports_the_skipped_rows_too(api):
    response = post_batch(api, csv_upload([("One?", "a"), ("", "a")]), query="?dry_run=true")
    assert response.status_code == 200
    body = response.json()
    assert (body["total_items"], body["skipped_count"]) == (1, 1)
    assert body["skipped_rows"] == [{"row": 3, "error": "no question"}]
    assert not Batch.objects.exists()


@pytest.mark.parametrize(
    ("upload", "says"),
    [
        (csv_upload([("x",)], header=("prompt",)), "no 'question' column"),
        (csv_upload([("", "a"), ("", "b")]), "None of the file's 2 rows has a question"),
        (csv_upload([], header=("question",)), "no rows"),
        (csv_upload(ROWS, name="questions.txt"), ".csv or .xlsx"),
        (csv_upload(ROWS, name="questions.xlsx"), "not a valid XLSX"),
    ],
)
def test_a_bad_file_is_a_400_with_a_sentence_and_creates_nothing(api, upload, says):
    response = post_batch(api, upload)
    assert response.status_code == 400
    assert says in response.json()["error"]
    assert not Batch.objects.exists()
    assert not DBTaskResult.objects.exists()


def test_more_rows_than_the_limit_is_a_400(api, settings):
    settings.BATCH_MAX_ROWS = 2
    response = post_batch(api, csv_upload(ROWS))
    assert response.status_code == 400
    assert "more than 2 rows" in response.json()["error"]
    assert not Batch.objects.exists()


def test_a_nul_character_far_into_a_csv_is_a_400_naming_its_row_on_every_database(api):
    # Past the first 64 KiB, which the binary check reads; PostgreSQL refuses a NUL
    # in text and JSON, so it used to be a 500 there.
    rows = [(f"Question {n}?", "c") for n in range(5000)] + [("Late\x00question?", "c")]
    response = post_batch(api, csv_upload(rows))
    assert response.status_code == 400
    assert response.json()["error"].startswith("Row 5002 contains a NUL character")
    assert not Batch.objects.exists()


def test_a_csv_with_a_quote_never_closed_is_a_400_instead_of_fewer_rows(api):
    data = b'question,chat_id\nFirst,a\n"Second,a\nThird,a\n'
    response = post_batch(api, SimpleUploadedFile("q.csv", data, content_type="text/csv"))
    assert response.status_code == 400
    assert "Row 3 of the CSV file opens a quote" in response.json()["error"]
    assert not Batch.objects.exists()


def test_a_chat_id_longer_than_255_characters_is_a_400_not_a_conversation_cut_short(api):
    # Cut to 255 characters, these two would have been one conversation.
    rows = [("One?", "x" * 255 + "1"), ("Two?", "x" * 255 + "2")]
    response = post_batch(api, csv_upload(rows))
    assert response.status_code == 400
    assert response.json()["error"] == "Row 2 has a chat_id longer than 255 characters."
    assert not Batch.objects.exists()


def test_an_xlsx_inflating_past_batch_max_uncompressed_bytes_is_a_400(api, settings):
    upload = io.BytesIO(xlsx_bytes([(f"Question number {n}?", "c") for n in range(20_000)]))
    upload.name = "big.xlsx"
    settings.BATCH_MAX_UNCOMPRESSED_BYTES = 1024 * 1024
    response = post_batch(api, upload)
    assert response.status_code == 400
    assert "more than the 1 MiB a workbook may hold" in response.json()["error"]
    assert not Batch.objects.exists()


def test_a_missing_file_an_unknown_processor_or_bad_options_is_a_400(api):
    assert "field 'file'" in api.post("/api/v1/batches/", {"name": "x"}).json()["error"]
    unknown = post_batch(api, csv_upload(ROWS), processor="gpt-17")
    assert unknown.status_code == 400
    assert unknown.json()["error"] == (
        "Form field processor names no registered processor ('gpt-17'); "
        "choose one of: echo, http, openai."
    )
    bad = post_batch(api, csv_upload(ROWS), options="[1, 2]")
    assert bad.status_code == 400
    assert "options must be a JSON object" in bad.json()["error"]
    assert not Batch.objects.exists()


def test_a_dry_run_summarises_the_file_and_creates_nothing(api):
    response = post_batch(api, csv_upload(ROWS), query="?dry_run=true")
    assert response.status_code == 200
    body = response.json()
    assert (body["total_items"], body["chat_groups"], body["columns"]) == (
        3,
        2,
        ["question", "chat_id"],
    )
    assert not Batch.objects.exists()


def test_the_list_shows_own_batches_newest_first_and_filters_by_status(api, alice, bob):
    older, newer = make_batch(alice, ROWS), make_batch(alice, ROWS)
    make_batch(bob, ROWS)
    Batch.objects.filter(pk=older.pk).update(status=BatchStatus.PROCESSED)

    listed = api.get("/api/v1/batches/").json()["results"]
    assert [b["id"] for b in listed] == [str(newer.pk), str(older.pk)]
    processed = api.get("/api/v1/batches/?status=processed").json()["results"]
    assert [b["id"] for b in processed] == [str(older.pk)]


def test_staff_see_every_batch(api, alice, bob, staff):
    make_batch(alice, ROWS), make_batch(bob, ROWS)
    api.force_authenticate(staff)
    assert len(api.get("/api/v1/batches/").json()["results"]) == 2


def test_another_users_batch_is_a_404_everywhere(api, bob):
    batch = make_batch(bob, ROWS)
    base = f"/api/v1/batches/{batch.pk}"
    for path in ("/", "/interactions/", "/results?format=csv"):
        assert api.get(base + path).status_code == 404
    for path in ("/cancel", "/retry-failed"):
        assert api.post(base + path).status_code == 404
    assert Batch.objects.get(pk=batch.pk).status == BatchStatus.QUEUED


def test_the_detail_has_every_field_and_the_progress(api, alice):
    batch = make_batch(alice, ROWS * 2)
    Batch.objects.filter(pk=batch.pk).update(processed_items=2, failed_items=1)
    body = api.get(f"/api/v1/batches/{batch.pk}/").json()
    assert body["progress"] == 50
    assert body["total_items"] == 6
    for name in ("name", "owner", "processor", "options", "status", "source_name"):
        assert name in body
    for name in ("created_at", "started_at", "finished_at", "updated_at"):
        assert name in body


def test_a_cancelled_batch_shows_how_far_it_got_not_100_percent(api, alice):
    batch = make_batch(alice, ROWS)
    assert api.post(f"/api/v1/batches/{batch.pk}/cancel").status_code == 200
    body = api.get(f"/api/v1/batches/{batch.pk}/").json()
    assert (body["status"], body["processed_items"], body["cancelled_items"]) == (
        "cancelled",
        0,
        3,
    )
    assert (body["progress"], body["ended_progress"]) == (0, 100)


def test_progress_counts_the_items_that_ran_and_ended_progress_the_cancelled_too(api, alice):
    batch = make_batch(alice, ROWS * 4)
    Batch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.CANCELLED, processed_items=3, failed_items=3, cancelled_items=6
    )
    body = api.get(f"/api/v1/batches/{batch.pk}/").json()
    assert (body["progress"], body["ended_progress"]) == (50, 100)
    Batch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.PROCESSING, processed_items=3, failed_items=0, cancelled_items=0
    )
    body = api.get(f"/api/v1/batches/{batch.pk}/").json()
    assert (body["progress"], body["ended_progress"]) == (25, 25)


def test_an_interaction_id_from_the_list_reads_the_item_in_the_batch_get(api, alice):
    batch = make_batch(alice, ROWS)
    listed = api.get(f"/api/v1/batches/{batch.pk}/interactions/").json()["results"]
    ids = [item["id"] for item in listed]
    assert ids == list(batch.interactions.order_by("row_number").values_list("pk", flat=True))
    got = api.post(
        "/api/v1/batch/get",
        {"resource_type": "interactions", "ids": ids[:2], "fields": ["id", "row_number"]},
        format="json",
    ).json()
    assert [result["data"] for result in got["results"]] == [
        {"id": ids[0], "row_number": 2},
        {"id": ids[1], "row_number": 3},
    ]


def test_interactions_are_paginated_in_row_order_and_filter_by_status(api, alice):
    batch = make_batch(alice, [(f"q{n}", "") for n in range(5)])
    batch.interactions.filter(row_number=4).update(status=InteractionStatus.FAILED)

    first = api.get(f"/api/v1/batches/{batch.pk}/interactions/?page_size=2").json()
    assert [i["row_number"] for i in first["results"]] == [2, 3]
    second = api.get(first["next"]).json()
    assert [i["row_number"] for i in second["results"]] == [4, 5]
    failed = api.get(f"/api/v1/batches/{batch.pk}/interactions/?status=failed").json()
    assert [i["row_number"] for i in failed["results"]] == [4]
    assert api.get(f"/api/v1/batches/{batch.pk}/interactions/?status=nope").status_code == 400


def test_a_bad_interactions_filter_is_a_400_whose_details_say_what_is_wrong(api, alice):
    batch = make_batch(alice, [("q", "")])
    response = api.get(f"/api/v1/batches/{batch.pk}/interactions/?status=bogus")
    assert response.status_code == 400
    assert response.json()["details"] == {
        "status": ["Select a valid choice. bogus is not one of the available choices."]
    }


def _answered(batch):
    for item in batch.interactions.all():
        item.status = InteractionStatus.SUCCEEDED
        item.output = {"text": f"=answer {item.row_number}"}
        item.save()


def test_results_download_as_csv_with_formulas_neutralised(api, alice):
    batch = make_batch(alice, [("=1+1", "a"), ("plain", "")])
    _answered(batch)
    response = api.get(f"/api/v1/batches/{batch.pk}/results?format=csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'attachment; filename="questions-' in response["Content-Disposition"]
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == [
        *("row_number", "chat_id", "question", "output", "status", "error"),
        *("prompt_tokens", "completion_tokens", "total_tokens"),
    ]
    assert rows[0]["question"] == "'=1+1"
    assert rows[0]["output"] == "'=answer 2"
    assert (rows[1]["row_number"], rows[1]["status"]) == ("3", "succeeded")


def test_results_download_as_xlsx_and_json(api, alice):
    batch = make_batch(alice, [("q1", "a"), ("q2", "a")])
    _answered(batch)
    xlsx = api.get(f"/api/v1/batches/{batch.pk}/results?format=xlsx")
    assert xlsx["Content-Disposition"].endswith('.xlsx"')
    sheet = load_workbook(io.BytesIO(b"".join(xlsx.streaming_content))).active
    assert [c.value for c in sheet[2]] == [2, "a", "q1", "'=answer 2", "succeeded", *[None] * 4]

    items = api.get(f"/api/v1/batches/{batch.pk}/results?format=json")
    body = __import__("json").loads(b"".join(items.streaming_content))
    assert body[1] == {
        "row_number": 3,
        "chat_id": "a",
        "input": {"question": "q2", "chat_id": "a"},
        "output": "=answer 3",
        "status": "succeeded",
        "error": "",
        "prompt_tokens": None,
        "completion_tokens": None,
        "total_tokens": None,
    }
    assert api.get(f"/api/v1/batches/{batch.pk}/results?format=pdf").status_code == 400


def test_the_results_download_does_not_take_fields(api, alice):
    batch = make_batch(alice, [("q1", "a")])
    _answered(batch)
    plain = b"".join(api.get(f"/api/v1/batches/{batch.pk}/results?format=json").streaming_content)
    # ?fields= selects fields of JSON answers; on a file it is not read at all.
    for fields in ("status", "colour"):
        response = api.get(f"/api/v1/batches/{batch.pk}/results?format=json&fields={fields}")
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == plain
    assert api.get(f"/api/v1/batches/{batch.pk}/?fields=colour").status_code == 400


def test_cancel_marks_the_items_not_started_and_reports_them(api, alice):
    batch = make_batch(alice, ROWS)
    Interaction.objects.filter(row_number=2).update(status=InteractionStatus.SUCCEEDED)

    response = api.post(f"/api/v1/batches/{batch.pk}/cancel")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancelled_items"]) == ("cancelled", 2)
    assert set(batch.interactions.values_list("row_number", "status")) == {
        (2, "succeeded"),
        (3, "cancelled"),
        (4, "cancelled"),
    }
    again = api.post(f"/api/v1/batches/{batch.pk}/cancel")
    assert again.status_code == 409
    assert "cancelled" in again.json()["error"]


def test_retry_failed_requeues_the_failed_items_of_a_completed_batch(
    api, alice, django_capture_on_commit_callbacks
):
    batch = make_batch(alice, ROWS)
    assert api.post(f"/api/v1/batches/{batch.pk}/retry-failed").status_code == 409
    batch.interactions.update(status=InteractionStatus.SUCCEEDED, output={"text": "ok"})
    batch.interactions.filter(row_number=3).update(status=InteractionStatus.FAILED, error="boom")
    Batch.objects.filter(pk=batch.pk).update(
        status=BatchStatus.COMPLETED_WITH_ERRORS, processed_items=2, failed_items=1
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/v1/batches/{batch.pk}/retry-failed")

    assert response.status_code == 202
    assert (response.json()["status"], response.json()["retried_items"]) == ("queued", 1)
    item = batch.interactions.get(row_number=3)
    assert (item.status, item.error) == ("pending", "")
    assert queued_tasks(batch.pk) == 1


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (BatchStatus.PROCESSED, "The batch has no failed items to retry: every item succeeded."),
        (
            BatchStatus.QUEUED,
            "The batch is still queued; failed items can be retried once it has completed.",
        ),
        (
            BatchStatus.PROCESSING,
            "The batch is still processing; failed items can be retried once it has completed.",
        ),
        (
            BatchStatus.CANCELLED,
            "The batch was cancelled; the failed items of a cancelled batch are not retried.",
        ),
    ],
)
def test_retry_failed_says_why_a_batch_cannot_be_retried_and_changes_nothing(
    api, alice, status, error
):
    batch = make_batch(alice, ROWS)
    Batch.objects.filter(pk=batch.pk).update(status=status)
    before = list(batch.interactions.values_list("row_number", "status"))
    response = api.post(f"/api/v1/batches/{batch.pk}/retry-failed")
    assert response.status_code == 409
    assert error_body(response) == {"error": error, "details": {"status": status}}
    assert Batch.objects.get(pk=batch.pk).status == status
    assert list(batch.interactions.values_list("row_number", "status")) == before
    assert not DBTaskResult.objects.exists()


def test_anonymous_requests_are_refused(anonymous):
    assert anonymous.get("/api/v1/batches/").status_code == 401


def test_an_upload_asking_for_more_than_the_rate_limit_is_refused_naming_the_maximum(api, settings):
    settings.BATCH_RATE_LIMITS = {"openai": {"tokens_per_minute": 200_000}}
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # configured, never called
    options = '{"tokens_per_minute": 250000}'

    response = post_batch(api, csv_upload([("q", "")]), processor="openai", options=options)

    assert response.status_code == 400
    assert response.json()["error"] == (
        "The openai processor's tokens_per_minute may be at most 200000 (its limit in "
        "BATCH_RATE_LIMITS); a batch may only lower it."
    )
    assert not Batch.objects.exists()
