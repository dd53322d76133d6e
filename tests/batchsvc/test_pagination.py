"""Cursor pages end, whatever the data and whatever ordering is asked for."""

from urllib.parse import parse_qs, urlsplit

import pytest

from batchsvc.api.bulk import encode_items
from tests.conftest import make_run
from traces.services import runs_ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def same_start(alice):
    """2,500 runs that all started at the same moment (one import)."""
    runs = [make_run(start_time="2026-01-28T10:30:00Z") for _ in range(2500)]
    for start in range(0, len(runs), 1000):
        runs_ingest(owner=alice, items=encode_items(runs[start : start + 1000]), atomic=False)
    return {run["run_id"] for run in runs}


def follow(api, url, params, key="next"):
    seen, requests = [], 0
    response = api.get(url, params).json()
    while True:
        requests += 1
        seen += [item["run_id"] for item in response["results"]]
        if not response[key] or requests > 100:
            return seen, response, requests
        response = api.get(response[key]).json()


@pytest.mark.parametrize("ordering", [None, "start_time", "-created_at", "updated_at"])
def test_every_run_is_reached_once_when_a_thousand_share_the_ordering_value(
    api, same_start, ordering
):
    params = {"page_size": 100, "fields": "run_id"} | ({"ordering": ordering} if ordering else {})
    seen, last, requests = follow(api, "/api/v1/runs/", params)
    assert requests == 25
    assert len(seen) == len(set(seen)) == 2500
    assert set(seen) == same_start
    # and back again from the last page, by the previous links
    back, _, _ = follow(api, last["previous"], {}, key="previous")
    assert len(back) == len(set(back)) == 2400


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", "1001", ""])
def test_a_page_size_out_of_range_is_a_400_naming_the_range(api, value):
    response = api.get("/api/v1/runs/", {"page_size": value})
    assert response.status_code == 400
    assert response.json()["error"] == (
        f"Query parameter page_size must be a whole number from 1 to 1000, not {value!r}."
    )


@pytest.mark.parametrize("url", ["/api/v1/runs/", "/api/v1/traces/", "/api/v1/batches/"])
def test_an_unknown_ordering_is_a_400_listing_the_offered_ones(api, url):
    response = api.get(url, {"ordering": "bogus,-created_at"})
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "Query parameter ordering cannot be bogus; it takes "
    )
    assert "created_at" in response.json()["details"]["allowed"]


def test_a_garbage_cursor_is_a_400_not_a_404(api, same_start):
    response = api.get("/api/v1/runs/", {"cursor": "garbage"})
    assert response.status_code == 400
    assert response.json()["error"].startswith(
        "Query parameter cursor is not a cursor of this list"
    )


def test_a_cursor_of_another_ordering_is_refused(api, same_start):
    next_url = api.get("/api/v1/runs/", {"page_size": 10}).json()["next"]
    # the same cursor, asked of the list ordered by two fields
    [cursor] = parse_qs(urlsplit(next_url).query)["cursor"]
    response = api.get("/api/v1/runs/", {"cursor": cursor, "ordering": "start_time,created_at"})
    assert response.status_code == 400
    assert "another ordering" in response.json()["error"]
