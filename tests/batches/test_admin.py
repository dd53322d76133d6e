import pytest
from django.contrib.auth.models import Permission
from django.test import Client
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


def staff_with(django_user_model, *codenames) -> Client:
    user = django_user_model.objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_staff_who_may_only_view_batches_can_neither_cancel_nor_retry(django_user_model, alice):
    viewer = staff_with(django_user_model, "view_batch")
    active = make_batch(alice, [("q", "")])
    failed = make_batch(alice, [("q", "")])
    failed.interactions.update(status=InteractionStatus.FAILED, error="x")
    Batch.objects.filter(pk=failed.pk).update(status=BatchStatus.FAILED, failed_items=1)

    page = viewer.get(reverse("admin:batches_batch_change", args=[active.pk])).content.decode()
    failed_page = viewer.get(reverse("admin:batches_batch_change", args=[failed.pk]))
    cancel = viewer.post(reverse("admin:batches_batch_cancel", args=[active.pk]))
    retry = viewer.post(reverse("admin:batches_batch_retry_failed", args=[failed.pk]))
    changelist = reverse("admin:batches_batch_changelist")
    listed = viewer.get(changelist).content.decode()
    for action, batch in (("cancel", active), ("retry_failed", failed)):
        viewer.post(changelist, {"action": action, "_selected_action": [batch.pk]})

    assert "items page 1 of 1" in page and 'id="batch-cancel"' not in page
    assert 'id="batch-retry"' not in failed_page.content.decode()
    assert (cancel.status_code, retry.status_code) == (403, 403)
    assert 'value="cancel"' not in listed and 'value="retry_failed"' not in listed
    assert 'value="download_csv"' in listed
    assert Batch.objects.get(pk=active.pk).status == BatchStatus.QUEUED
    assert Batch.objects.get(pk=failed.pk).status == BatchStatus.FAILED


def test_staff_who_may_change_batches_can_cancel_and_see_the_buttons(django_user_model, alice):
    clerk = staff_with(django_user_model, "view_batch", "change_batch")
    batch = make_batch(alice, [("q", "")])

    page = clerk.get(reverse("admin:batches_batch_change", args=[batch.pk])).content.decode()
    listed = clerk.get(reverse("admin:batches_batch_changelist")).content.decode()
    clerk.post(reverse("admin:batches_batch_cancel", args=[batch.pk]))

    assert 'id="batch-cancel"' in page
    assert 'value="cancel"' in listed
    assert Batch.objects.get(pk=batch.pk).status == BatchStatus.CANCELLED


def test_the_failed_items_list_shows_each_error_and_the_answers_first_line(admin_client, alice):
    from batches.models import InteractionStatus
    from tests.batches.factories import make_batch

    batch = make_batch(alice, [("q1", ""), ("q2", "")])
    first, second = batch.interactions.order_by("row_number")
    first.status, first.error = InteractionStatus.FAILED, "the model said no"
    first.save()
    second.status, second.output = InteractionStatus.SUCCEEDED, {"text": "four\nand more"}
    second.save()
    failed = admin_client.get("/admin/batches/interaction/", {"status__exact": "failed"})
    page = failed.content.decode()
    assert "the model said no" in page and 'class="column-short_error' in page
    everything = admin_client.get("/admin/batches/interaction/").content.decode()
    assert '<td class="field-answer">four</td>' in everything
