import pytest

from tests.setuplogs.conftest import batch_url, line

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged(api, run):
    """A run with 10 lines: every third one an error, the fifth a warning."""
    levels = ["error" if n % 3 == 0 else "warning" if n == 4 else "info" for n in range(10)]
    logs = [line(f"line {n}", level=level) for n, level in enumerate(levels)]
    assert api.post(batch_url(run), {"logs": logs}, format="json").status_code == 200
    return run


def read(api, run, query=""):
    response = api.get(batch_url(run) + query)
    assert response.status_code == 200, response.json()
    return response.json()


def seqs(page):
    return [item["seq"] for item in page["results"]]


def test_lines_come_in_seq_order_with_their_fields(api, logged):
    page = read(api, logged)
    assert seqs(page) == list(range(1, 11))
    first = page["results"][0]
    assert set(first) == {"seq", "timestamp", "level", "message", "client_id", "received_at"}
    assert (first["level"], first["message"]) == ("error", "line 0")


def test_after_returns_only_the_lines_after_that_seq(api, logged):
    assert seqs(read(api, logged, "?after=7")) == [8, 9, 10]
    assert seqs(read(api, logged, "?after=10")) == []


def test_tailing_with_after_sees_lines_appended_later(api, logged):
    last = seqs(read(api, logged))[-1]
    api.post(batch_url(logged), {"logs": [line("new")]}, format="json")
    page = read(api, logged, f"?after={last}")
    assert [item["message"] for item in page["results"]] == ["new"]


def test_level_selects_one_or_several_levels_in_any_spelling(api, logged):
    assert seqs(read(api, logged, "?level=error")) == [1, 4, 7, 10]
    assert seqs(read(api, logged, "?level=WARN,error")) == [1, 4, 5, 7, 10]


def test_min_level_selects_that_level_and_worse(api, logged):
    assert seqs(read(api, logged, "?min_level=warning")) == [1, 4, 5, 7, 10]


def test_tail_returns_the_last_lines_of_those_selected(api, logged):
    assert seqs(read(api, logged, "?tail=3")) == [8, 9, 10]
    assert seqs(read(api, logged, "?tail=2&level=error")) == [7, 10]
    assert seqs(read(api, logged, "?tail=50")) == list(range(1, 11))


def test_pages_follow_each_other_without_gaps_or_repeats(api, logged):
    page = read(api, logged, "?page_size=4&after=1")
    collected = seqs(page)
    while page["next"]:
        page = api.get(page["next"]).json()
        collected += seqs(page)
    assert collected == list(range(2, 11))


def test_lines_of_other_runs_are_not_shown(api, logged, run_factory):
    other = run_factory()
    api.post("/api/v1/runs/", other, format="json")
    api.post(f"/api/v1/runs/{other['run_id']}/setup_logs", {"logs": [line()]}, format="json")
    assert len(read(api, logged)["results"]) == 10


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?after=x", "after"),
        ("?after=-1", "after"),
        ("?after=9223372036854775808", "after"),
        ("?level=loud", "level"),
        ("?tail=0", "tail"),
        ("?tail=99999999999999999999", "tail"),
    ],
)
def test_an_invalid_query_is_a_400_naming_the_parameter(api, logged, query, field):
    response = api.get(batch_url(logged) + query)
    assert response.status_code == 400
    assert field in response.json()["details"]


def test_an_unknown_run_is_a_404(api):
    response = api.get("/api/v1/runs/nope/setup_logs")
    assert response.status_code == 404
    assert response.json()["error"] == "No run with run_id 'nope'."


def test_reading_needs_authentication(anonymous, logged):
    assert anonymous.get(batch_url(logged)).status_code == 401


def test_the_openapi_schema_documents_the_log_endpoints(api):
    paths = api.get("/api/schema/?format=json").json()["paths"]
    batch = paths["/api/v1/runs/{run_id}/setup_logs"]
    assert set(batch) >= {"get", "post"}
    body = batch["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["logs"]["items"] == {"$ref": "#/components/schemas/LogLineIn"}
    assert "dropped" in body["properties"]
    assert set(paths["/api/v1/runs/{run_id}/setup_log"]) >= {"post", "patch"}
