import pytest
from django.test import Client

from tests.setuplogs.conftest import batch_url, line

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(staff):
    client = Client()
    client.force_login(staff)
    return client


def test_the_log_line_list_finds_a_runs_lines_and_offers_no_add_or_delete(admin_client, api, run):
    api.post(batch_url(run), {"logs": [line("hello from the agent")]}, format="json")
    response = admin_client.get(f"/admin/setuplogs/logentry/?q={run.run_id}")
    assert response.status_code == 200
    page = response.content.decode()
    assert "hello from the agent" in page
    assert "/admin/setuplogs/logentry/add/" not in page
    assert 'value="delete_selected"' not in page


def test_the_run_page_carries_the_urls_its_log_script_polls(admin_client, run):
    response = admin_client.get(f"/admin/traces/run/{run.pk}/change/")
    page = response.content.decode()
    # With the owner: staff may be reading another owner's run of a shared run_id.
    assert f'data-lines-url="/api/v1/runs/{run.run_id}/setup_logs?owner=alice"' in page
    assert f'data-run-url="/api/v1/runs/{run.run_id}?owner=alice"' in page
    assert 'data-status="running"' in page
