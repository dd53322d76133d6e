import json

import pytest

from batchsvc.api.bulk import encode_items
from traces.models import Run
from traces.services import runs_ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def family(run_factory, alice):
    parent = run_factory(agent_name="orchestrator", metrics_json={"pages": 12, "nested": {"a": 1}})
    children = [run_factory(parent_run_id=parent["run_id"], agent_name="worker") for _ in range(2)]
    orphan = run_factory(parent_run_id="not-yet-reported")
    runs_ingest(owner=alice, items=encode_items([parent, *children, orphan]), atomic=True)
    return {r["run_id"]: Run.objects.get(run_id=r["run_id"]) for r in (parent, *children, orphan)}


def change_page(client, run):
    return client.get(f"/admin/traces/run/{run.pk}/change/").content.decode()


def test_the_run_list_searches_by_run_id_event_id_and_agent_name(admin_client, family):
    parent = next(r for r in family.values() if r.agent_name == "orchestrator")
    for query in (parent.run_id, str(parent.event_id), "orchestrator"):
        page = admin_client.get("/admin/traces/run/", {"q": query}).content.decode()
        assert f">{parent.run_id}<" in page, query
        assert "worker" not in page.split('id="result_list"')[1], query


def test_the_run_list_offers_filters_and_a_date_hierarchy(admin_client, family):
    page = admin_client.get("/admin/traces/run/").content.decode()
    assert 'id="changelist-filter"' in page
    assert "?status__exact=running" in page
    assert "?start_time__year=2026" in page  # the date hierarchy's first level
    narrowed = admin_client.get("/admin/traces/run/", {"status__exact": "success"})
    assert narrowed.status_code == 200
    assert "0 runs" in narrowed.content.decode()


def test_a_run_page_links_to_its_parent_and_to_its_children(admin_client, family):
    parent = next(r for r in family.values() if r.agent_name == "orchestrator")
    children = [r for r in family.values() if r.parent_run_id == parent.run_id]

    parent_page = change_page(admin_client, parent)
    for child in children:
        assert f'href="/admin/traces/run/{child.pk}/change/">{child.run_id}</a>' in parent_page
    child_page = change_page(admin_client, children[0])
    assert f'href="/admin/traces/run/{parent.pk}/change/">{parent.run_id}</a>' in child_page


def test_a_parent_not_received_yet_is_named_without_a_link(admin_client, family):
    orphan = family[next(k for k, r in family.items() if r.parent_run_id == "not-yet-reported")]
    assert "not-yet-reported <em>(not received yet)</em>" in change_page(admin_client, orphan)


def test_json_is_shown_pretty_and_the_page_is_read_only(admin_client, family):
    parent = next(r for r in family.values() if r.agent_name == "orchestrator")
    page = change_page(admin_client, parent)
    pretty = json.dumps(parent.metrics_json, indent=2).replace('"', "&quot;")
    assert f'<pre class="batchsvc-json">{pretty}</pre>' in page
    assert "<textarea" not in page and 'name="_save"' not in page
    response = admin_client.post(f"/admin/traces/run/{parent.pk}/change/", {"status": "failure"})
    assert response.status_code == 403
    parent.refresh_from_db()
    assert parent.status == "running"
    assert admin_client.get("/admin/traces/run/add/").status_code == 403
