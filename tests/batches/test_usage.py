"""Tokens the openai processor reports: stored per item by a worker run (in this
process, real database, a stub model API on 127.0.0.1), summed per batch with an
estimated cost, in the API, the results export and the admin."""

import csv
import io
import json
from decimal import Decimal

import pytest
from django.urls import reverse

from batches.engine.worker import batch_process
from tests.batches.factories import make_batch
from tests.support.stubs import Stub

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def model_api(settings):
    stub = Stub()
    settings.OPENAI_BASE_URL = stub.url + "/v1"
    settings.OPENAI_MODEL = "gpt-4o-mini"
    settings.BATCH_MODEL_PRICES = {
        "gpt-4o-mini": {"prompt_per_million": Decimal("0.15"), "completion_per_million": 0.6}
    }
    stub.default = {
        "json": {
            "choices": [{"message": {"content": "Paris."}}],
            "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500},
        }
    }
    yield stub
    stub.stop()


def test_each_items_usage_is_stored_and_the_batch_sums_it_with_its_cost(alice, api, model_api):
    batch = make_batch(alice, [("a?", "c"), ("b?", "c"), ("c?", "")], processor="openai")
    model_api.replies = [{"json": {"choices": [{"message": {"content": "no usage"}}]}}]

    batch_process(batch_id=batch.pk)

    items = list(batch.interactions.order_by("row_number"))
    usage = {(i.prompt_tokens, i.completion_tokens, i.total_tokens) for i in items}
    assert usage == {(None, None, None), (1200, 300, 1500)}
    assert sum(i.total_tokens is None for i in items) == 1
    body = api.get(f"/api/v1/batches/{batch.pk}").json()
    assert body["status"] == "processed"
    # 2400 x 0.15 / 1e6 + 600 x 0.60 / 1e6 dollars.
    assert body["usage"] == {
        "prompt_tokens": 2400,
        "completion_tokens": 600,
        "total_tokens": 3000,
        "model": "gpt-4o-mini",
        "estimated_cost": "0.000720",
    }
    listed = api.get(f"/api/v1/batches/{batch.pk}/interactions").json()["results"]
    assert [i["total_tokens"] for i in listed].count(1500) == 2


def test_a_batch_whose_model_has_no_price_reports_its_tokens_without_a_cost(alice, api, model_api):
    batch = make_batch(alice, [("a?", "")], processor="openai", options={"model": "other"})
    batch_process(batch_id=batch.pk)
    usage = api.get(f"/api/v1/batches/{batch.pk}").json()["usage"]
    assert (usage["total_tokens"], usage["model"], usage["estimated_cost"]) == (1500, "other", None)


def test_the_results_export_has_each_items_tokens(alice, api, model_api):
    batch = make_batch(alice, [("a?", ""), ("b?", "")], processor="openai")
    batch_process(batch_id=batch.pk)

    response = api.get(f"/api/v1/batches/{batch.pk}/results?format=csv")
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["prompt_tokens"], r["completion_tokens"], r["total_tokens"]) for r in rows] == [
        ("1200", "300", "1500")
    ] * 2
    response = api.get(f"/api/v1/batches/{batch.pk}/results?format=json")
    assert json.loads(b"".join(response.streaming_content))[0]["total_tokens"] == 1500


def test_the_admin_shows_the_batches_tokens_and_cost_and_each_items(
    alice, client, staff, model_api
):
    batch = make_batch(alice, [("a?", "")], processor="openai")
    batch_process(batch_id=batch.pk)
    client.force_login(staff)

    page = client.get(reverse("admin:batches_batch_change", args=[batch.pk])).content.decode()
    item = batch.interactions.get()
    item_page = client.get(reverse("admin:batches_interaction_change", args=[item.pk]))

    assert 'data-batch-field="usage.total_tokens" data-kind="">1500</span>' in page
    assert 'data-batch-field="usage.estimated_cost" data-kind="">0.000360</span>' in page
    assert "<td>1500</td>" in page  # the items table
    assert "1500" in item_page.content.decode()
