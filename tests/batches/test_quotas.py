"""Per-owner quotas: batches queued or running (an upload over it is a 429), items
running at once (claims pass the owner over; waiting_for says so), and a share of
each provider's rate limits (a lane of the owner's own)."""

import itertools

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from batches.engine.claims import fair_order
from batches.models import Batch, BatchStatus, InteractionStatus, OwnerQuota, Worker
from batches.processors import lanes
from batches.processors.lanes import Lane
from batches.selectors import batch_waiting_for
from tests.batches.factories import csv_upload, make_batch, post_batch

pytestmark = pytest.mark.django_db


def test_an_upload_over_the_owners_queued_quota_is_a_429_and_creates_nothing(api, alice):
    OwnerQuota.objects.create(owner=alice, queued_batches=1)
    make_batch(alice, [("q", "")])

    response = post_batch(api, csv_upload([("r", "")]))

    assert response.status_code == 429
    assert response.json()["error"] == (
        "You have 1 batches queued or running, as many as your quota allows (1); upload "
        "this one when one of them has ended."
    )
    assert Batch.objects.count() == 1


def test_the_default_queued_quota_counts_only_unended_batches(api, alice, settings):
    settings.QUOTA_QUEUED_BATCHES = 1
    ended = make_batch(alice, [("q", "")])
    Batch.objects.filter(pk=ended.pk).update(status=BatchStatus.PROCESSED)

    assert post_batch(api, csv_upload([("r", "")])).status_code == 202
    assert post_batch(api, csv_upload([("s", "")])).status_code == 429


@pytest.mark.parametrize("field", ["running_items", "queued_batches", "provider_share"])
def test_a_quota_of_zero_or_less_is_refused_on_save(alice, field):
    quota = OwnerQuota(owner=alice, **{field: 0})
    with pytest.raises(ValidationError) as caught:
        quota.full_clean()
    assert field in caught.value.message_dict
    with pytest.raises(IntegrityError), transaction.atomic():
        OwnerQuota.objects.create(owner=alice, **{field: -1})


def test_the_admin_refuses_a_quota_of_zero(admin_client, alice):
    response = admin_client.post(
        "/admin/batches/ownerquota/add/", {"owner": alice.pk, "running_items": "0"}
    )
    assert response.status_code == 200  # the form again, with its error
    assert "Ensure this value is greater than or equal to 1." in response.content.decode()
    assert not OwnerQuota.objects.exists()


def running(batch, count: int) -> None:
    """``count`` of the batch's items running under a live heartbeat."""
    items = batch.interactions.order_by("row_number")[:count]
    batch.interactions.filter(pk__in=[item.pk for item in items]).update(
        status=InteractionStatus.RUNNING, claimed_by="w/0", heartbeat_at=timezone.now()
    )


def test_an_owner_at_their_running_quota_is_passed_over_and_waiting_for_says_so(
    alice, bob, settings
):
    OwnerQuota.objects.create(owner=alice, running_items=2)
    first = make_batch(alice, [(f"q{n}", "") for n in range(4)])
    second = make_batch(alice, [(f"q{n}", "") for n in range(4)])
    other = make_batch(bob, [(f"q{n}", "") for n in range(4)])
    running(first, 1)
    running(second, 1)
    Worker.objects.create(
        name="w", hostname="h", pid=1, started_at=timezone.now(), beat_at=timezone.now(), threads=8
    )

    order = {candidate.pk: candidate for candidate in fair_order()}

    assert order[first.pk].owner_full and order[second.pk].owner_full
    assert not order[other.pk].owner_full
    waiting = batch_waiting_for(Batch.objects.get(pk=first.pk))
    assert waiting["reason"] == "quota"
    assert waiting["message"].startswith("Its owner's quota: 2 of their items run")
    assert batch_waiting_for(Batch.objects.get(pk=other.pk)) is None


@pytest.fixture
def lane_name():
    return f"quota-{next(_names)}"


_names = itertools.count()


def test_an_owners_share_of_a_providers_budget_spaces_their_calls_by_it(lane_name, settings, alice):
    settings.BATCH_RATE_LIMITS = {lane_name: {"requests_per_minute": 600}}
    OwnerQuota.objects.create(owner=alice, provider_share=0.1)
    theirs = Lane(lane_name, {}, batch_id="b1", owner_id=alice.pk)
    anyone = Lane(lane_name, {}, batch_id="b2")

    starts = [lanes.backend().reserve(theirs.budgets, 0)[0] for _ in range(3)]

    assert [b.name for b in theirs.budgets] == [lane_name, f"{lane_name}:owner:{alice.pk}"]
    # 60 a minute for them: one second apart (with the lanes' headroom).
    assert [round(b - a, 2) for a, b in itertools.pairwise(starts)] == [1.01, 1.01]
    assert [b.name for b in anyone.budgets] == [lane_name]
