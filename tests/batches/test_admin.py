import pytest
from django.urls import reverse

from batches.models import Batch, BatchStatus, InteractionStatus
from tests.batches.factories import make_batch

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def test_the_batch_list_shows_owner_counts_and_a_progress_bar(admin_client, alice):
    batch = make_batch(alice, [("q", "")] * 4, name="Quiz")
    Batch.objects.filter(pk=batch.pk).update(processed_items=1, status=BatchStatus.PROCESSING)

    page = admin_client.get(reverse("admin:batches_batch_changelist") + "?status=processing")

    html = page.content.decode()
    assert "Quiz" in html and "alice" in html
    assert f'data-url="/api/v1/batches/{batch.pk}" data-status="processing"' in html
    assert "width: 25%" in html


def test_the_batch_page_shows_its_items_a_page_at_a_time(admin_client, alice):
    batch = make_batch(alice, [(f"question {n}", "") for n in range(60)])
    url = reverse("admin:batches_batch_change", args=[batch.pk])

    first, second = admin_client.get(url), admin_client.get(url + "?items=2")

    assert "question 0<" in first.content.decode()
    assert "items page 1 of 2" in first.content.decode()
    assert "question 59<" in second.content.decode()
    assert "question 0<" not in second.content.decode()
    assert 'id="batch-cancel"' in first.content.decode()


def test_the_cancel_button_cancels_the_batch(admin_client, alice):
    batch = make_batch(alice, [("q", "")])
    response = admin_client.post(reverse("admin:batches_batch_cancel", args=[batch.pk]))
    assert response.status_code == 302
    assert Batch.objects.get(pk=batch.pk).status == BatchStatus.CANCELLED


def test_the_retry_action_requeues_failed_items(admin_client, alice):
    batch = make_batch(alice, [("q", "")])
    batch.interactions.update(status=InteractionStatus.FAILED, error="x")
    Batch.objects.filter(pk=batch.pk).update(status=BatchStatus.FAILED, failed_items=1)

    admin_client.post(
        reverse("admin:batches_batch_changelist"),
        {"action": "retry_failed", "_selected_action": [batch.pk]},
    )

    assert Batch.objects.get(pk=batch.pk).status == BatchStatus.QUEUED
    assert batch.interactions.get().status == InteractionStatus.PENDING


def test_the_download_action_streams_the_results(admin_client, alice):
    batch = make_batch(alice, [("=cmd", "")])
    response = admin_client.post(
        reverse("admin:batches_batch_changelist"),
        {"action": "download_csv", "_selected_action": [batch.pk]},
    )
    assert response["Content-Disposition"].endswith('-results.csv"')
    assert "'=cmd" in b"".join(response.streaming_content).decode("utf-8-sig")


def test_items_are_read_only(admin_client, alice):
    batch = make_batch(alice, [("q", "")])
    item = batch.interactions.get()
    url = reverse("admin:batches_interaction_change", args=[item.pk])
    admin_client.post(url, {"status": "succeeded"})
    item.refresh_from_db()
    assert item.status == InteractionStatus.PENDING
