import uuid

import msgspec
import pytest

from batchsvc.api.inserts import STAGE_FROM_ROWS
from tests.conftest import error_body
from traces import services
from traces.models import Run
from traces.schemas import RunBatchResult
from traces.services import runs_ingest

pytestmark = pytest.mark.django_db

LENIENT = "/api/v1/runs/batch"
ATOMIC = "/api/v1/runs/batch-transactional"


def post(api, url, runs, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return api.post(f"{url}?{query}" if query else url, {"runs": runs}, format="json")


def results(response):
    return [item["result"] for item in response.json()["runs"]]


@pytest.mark.parametrize("url", [LENIENT, ATOMIC])
def test_it_creates_every_run_and_answers_201(api, run_factory, url):
    runs = [run_factory() for _ in range(5)]
    response = post(api, url, runs)
    assert response.status_code == 201
    body = response.json()
    assert (body["total"], body["created"], body["existing"], body["failed"]) == (5, 5, 0, 0)
    assert body["errors"] == []
    assert [item["index"] for item in body["runs"]] == [0, 1, 2, 3, 4]
    assert [item["event_id"] for item in body["runs"]] == [r["event_id"] for r in runs]
    assert Run.objects.count() == 5


@pytest.mark.parametrize("url", [LENIENT, ATOMIC])
def test_the_response_matches_the_documented_schema(api, run_factory, url):
    good, bad = run_factory(), run_factory(job_type=None)
    response = post(api, url, [good, bad])
    msgspec.json.decode(response.content, type=RunBatchResult)


@pytest.mark.parametrize("url", [LENIENT, ATOMIC])
def test_a_retried_batch_reports_existing_and_stores_nothing_twice(api, run_factory, url):
    runs = [run_factory() for _ in range(3)]
    post(api, url, runs)
    response = post(api, url, runs)
    assert response.status_code == 201
    assert results(response) == ["existing"] * 3
    assert Run.objects.count() == 3


def test_an_event_id_repeated_in_one_request_is_existing_not_an_error(api, run_factory):
    run = run_factory()
    response = post(api, LENIENT, [run, dict(run), run_factory()])
    assert response.status_code == 201
    assert results(response) == ["created", "existing", "created"]
    assert response.json()["errors"] == []
    assert Run.objects.count() == 2


def test_a_run_id_already_used_by_another_event_fails_that_item_only(api, run_factory):
    first = run_factory()
    post(api, LENIENT, [first])
    clash = run_factory(run_id=first["run_id"])
    response = post(api, LENIENT, [run_factory(), clash])
    assert response.status_code == 200
    body = response.json()
    assert results(response) == ["created", "failed"]
    assert body["errors"] == [
        {
            "index": 1,
            "event_id": clash["event_id"],
            "error": f"run_id {first['run_id']!r} is already used by a run with another event_id",
        }
    ]
    assert Run.objects.count() == 2
    assert str(Run.objects.get(run_id=first["run_id"]).event_id) == first["event_id"]


def test_a_run_id_repeated_in_one_request_with_another_event_fails_the_second(api, run_factory):
    a = run_factory()
    b = run_factory(run_id=a["run_id"])
    response = post(api, LENIENT, [a, b])
    assert results(response) == ["created", "failed"]
    assert "also used by item 0" in response.json()["errors"][0]["error"]
    assert Run.objects.count() == 1


def test_lenient_stores_the_valid_items_and_reports_each_invalid_one(api, run_factory):
    runs = [
        run_factory(),
        run_factory(event_id="not-a-uuid"),
        run_factory(status="exploded"),
        {k: v for k, v in run_factory().items() if k != "start_time"},
        "a string",
        run_factory(metrics_json=[1, 2]),
        run_factory(),
    ]
    response = post(api, LENIENT, runs)
    assert response.status_code == 200
    body = response.json()
    assert results(response) == ["created", *["failed"] * 5, "created"]
    assert (body["created"], body["failed"]) == (2, 5)
    errors = {e["index"]: e["error"] for e in body["errors"]}
    assert errors[1] == "event_id: Invalid UUID"
    assert errors[2].startswith("status: Invalid enum value 'exploded'")
    assert errors[3] == "start_time is required"
    assert errors[4] == "item must be a JSON object, not `str`"
    assert errors[5] == "metrics_json: Expected `object | null`, got `array`"
    assert Run.objects.count() == 2


def test_transactional_rolls_back_the_whole_batch_when_one_run_is_invalid(api, run_factory):
    runs = [run_factory(), run_factory(agent_name=""), run_factory()]
    response = post(api, ATOMIC, runs)
    assert response.status_code == 400
    body = response.json()
    assert body["rolled_back"] is True
    assert body["failed"] == 1
    assert body["errors"][0]["index"] == 1
    # Nothing was stored, and no item says it was.
    assert results(response) == ["rolled_back", "failed", "rolled_back"]
    assert (body["created"], body["existing"]) == (0, 0)
    assert Run.objects.count() == 0


def test_transactional_rolls_back_when_the_database_refuses_a_run_id(api, run_factory):
    taken = run_factory()
    post(api, LENIENT, [taken])
    runs = [run_factory(), run_factory(run_id=taken["run_id"])]
    response = post(api, ATOMIC, runs)
    assert response.status_code == 400
    assert response.json()["rolled_back"] is True
    assert results(response) == ["rolled_back", "failed"]
    assert not Run.objects.filter(event_id=runs[0]["event_id"]).exists()


@pytest.mark.parametrize("url", [LENIENT, ATOMIC])
def test_dry_run_classifies_every_item_and_stores_nothing(api, run_factory, url):
    stored = run_factory()
    post(api, LENIENT, [stored])
    runs = [stored, run_factory(), run_factory(run_id=stored["run_id"]), run_factory(job_type="")]
    response = post(api, url, runs, dry_run="true")
    body = response.json()
    assert body["dry_run"] is True
    assert results(response) == ["existing", "created", "failed", "failed"]
    assert response.status_code == (400 if url == ATOMIC else 200)
    assert "rolled_back" not in body
    assert Run.objects.count() == 1


@pytest.mark.parametrize("url", [LENIENT, ATOMIC])
def test_errors_only_lists_failed_items_and_keeps_the_counts(api, run_factory, url):
    runs = [run_factory(), run_factory(start_time="yesterday"), run_factory()]
    body = post(api, url, runs, errors_only="true").json()
    assert [item["index"] for item in body["runs"]] == [1]
    created = 0 if url == ATOMIC else 2  # an all-or-nothing batch with a failure stores none
    assert (body["total"], body["created"], body["failed"]) == (3, created, 1)


@pytest.mark.parametrize("url", [LENIENT, ATOMIC])
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "runs array is required."),
        ({"runs": None}, "runs array is required."),
        ({"runs": {"a": 1}}, "runs array is required."),
        ({"runs": []}, "runs array is required and must hold at least one item."),
        ([1, 2], "The request body must be a JSON object with a runs array."),
    ],
)
def test_a_malformed_envelope_is_a_400_and_writes_nothing(api, url, body, message):
    response = api.post(url, body, format="json")
    assert response.status_code == 400
    assert error_body(response) == {"error": message}
    assert Run.objects.count() == 0


@pytest.mark.parametrize("url", [LENIENT, ATOMIC])
def test_more_runs_than_the_limit_is_a_400_naming_the_limit(api, run_factory, settings, url):
    settings.RUNS_BATCH_MAX = 3
    response = post(api, url, [run_factory() for _ in range(4)])
    assert response.status_code == 400
    assert response.json()["error"] == "runs array holds 4 items; the limit is 3 per request."
    assert Run.objects.count() == 0


def test_a_bad_flag_value_is_a_400(api, run_factory):
    response = post(api, LENIENT, [run_factory()], dry_run="maybe")
    assert response.status_code == 400
    assert "dry_run must be true or false" in response.json()["error"]
    assert Run.objects.count() == 0


def test_json_objects_are_stored_and_returned_exactly(api, run_factory):
    metrics = {"z": 1, "a": [1.5, {"deep": [None, True, "é"]}], "big": 2**53}
    context = {"trace_id": "t", "span_id": "s", "empty": {}}
    run = run_factory(metrics_json=metrics, context_json=context)
    post(api, LENIENT, [run])
    stored = api.get(f"/api/v1/runs/{run['run_id']}/").json()
    assert stored["metrics_json"] == metrics
    assert stored["context_json"] == context


def test_a_child_may_arrive_before_its_parent(api, run_factory):
    child = run_factory(parent_run_id="parent-not-yet-here")
    response = post(api, LENIENT, [child])
    assert response.status_code == 201
    assert Run.objects.get(run_id=child["run_id"]).parent_run_id == "parent-not-yet-here"


def test_an_unknown_key_fails_its_run_naming_the_key_and_the_valid_ones(api, run_factory):
    runs = [run_factory(colour="blue"), run_factory()]
    body = post(api, LENIENT, runs).json()
    assert results_of(body) == ["failed", "created"]
    assert body["errors"][0]["event_id"] == runs[0]["event_id"]
    assert body["errors"][0]["error"].startswith(
        "unknown key 'colour'; the keys are: event_id, run_id, parent_run_id, "
    )
    assert Run.objects.count() == 1


@pytest.mark.parametrize(("key", "meant"), [("eventId", "event_id"), ("agentName", "agent_name")])
def test_a_camel_case_key_fails_its_run_naming_the_field_it_meant(api, run_factory, key, meant):
    run = run_factory(**{key: "x"})
    body = post(api, LENIENT, [run]).json()
    assert body["errors"][0]["error"] == f"unknown key {key!r} (did you mean {meant}?)"
    assert Run.objects.count() == 0


def test_an_unknown_key_beside_the_runs_array_refuses_the_request(api, run_factory):
    response = api.post(LENIENT, {"runs": [run_factory()], "dryRun": True}, format="json")
    assert response.status_code == 400
    assert error_body(response) == {
        "error": "The request body's key 'dryRun' is unknown; it takes runs.",
        "details": {"unknown": ["dryRun"], "valid": ["runs"]},
    }
    assert Run.objects.count() == 0


def results_of(body) -> list[str]:
    return [item["result"] for item in body["runs"]]


def test_text_with_a_nul_character_fails_the_item_not_the_request(api, run_factory):
    runs = [run_factory(agent_name="a\x00b"), run_factory(context_json={"k": "v\x00"})]
    body = post(api, LENIENT, runs).json()
    assert [e["error"] for e in body["errors"]] == [
        "agent_name: must not contain the NUL character",
        "context_json must not contain the NUL character (\\u0000)",
    ]


TEXT_FIELDS = [
    "run_id",
    "parent_run_id",
    "agent_name",
    "job_type",
    "product",
    "git_repo",
    "git_branch",
    "git_commit",
    "error_summary",
]


@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_every_text_field_refuses_the_nul_character(api, run_factory, field):
    runs = [run_factory(**{field: "a\x00b"}), run_factory()]
    body = post(api, LENIENT, runs).json()
    problem = "/ or the NUL character" if field.endswith("run_id") else "the NUL character"
    assert body["errors"] == [
        {
            "index": 0,
            "event_id": runs[0]["event_id"],
            "error": f"{field}: must not contain {problem}",
        }
    ]
    assert list(Run.objects.values_list("run_id", flat=True)) == [runs[1]["run_id"]]


def test_naive_timestamps_are_read_as_utc(api, run_factory):
    run = run_factory(start_time="2026-01-28T10:30:00")
    post(api, LENIENT, [run])
    assert api.get(f"/api/v1/runs/{run['run_id']}/").json()["start_time"] == (
        "2026-01-28T10:30:00Z"
    )


@pytest.mark.parametrize("size", [1, 10, 1000])
def test_a_new_batch_costs_one_insert_whatever_its_size(
    api, run_factory, django_assert_max_num_queries, connection_vendor, size
):
    runs = [run_factory() for _ in range(size)]
    # token lookup, savepoint handling and one INSERT: independent of the size (on
    # PostgreSQL a large batch of new runs is one COPY into the table, in a savepoint).
    copied = connection_vendor == "postgresql" and size >= STAGE_FROM_ROWS
    with django_assert_max_num_queries(5 + (2 if copied else 0)) as ctx:
        response = post(api, LENIENT, runs)
    assert response.status_code == 201
    statement = 'COPY "traces_run"' if copied else "INSERT"
    assert sum(q["sql"].startswith(statement) for q in ctx.captured_queries) == 1


def test_a_retried_batch_costs_one_insert_and_one_select(
    api, run_factory, django_assert_max_num_queries
):
    runs = [run_factory() for _ in range(1000)]
    post(api, LENIENT, runs)
    # As above, and one SELECT for the stored runs; on PostgreSQL the refused COPY
    # rolled back, then a COPY into the staging table (created once) and its INSERT.
    with django_assert_max_num_queries(11) as ctx:
        response = post(api, LENIENT, runs)
    assert results(response) == ["existing"] * 1000
    assert sum(q["sql"].startswith("SELECT") for q in ctx.captured_queries) == 2  # token + runs


def test_the_batch_endpoints_need_authentication(anonymous, run_factory):
    response = anonymous.post(LENIENT, {"runs": [run_factory()]}, format="json")
    assert response.status_code == 401
    assert error_body(response) == {"error": "Authentication credentials were not provided."}
    assert Run.objects.count() == 0


def test_the_batch_endpoints_are_throttled_with_a_json_429(api, run_factory, settings):
    from django.core.cache import cache

    cache.clear()
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"batch": "2/minute"},
    }
    for _ in range(2):
        assert post(api, LENIENT, [run_factory()]).status_code == 201
    response = post(api, ATOMIC, [run_factory()])
    cache.clear()
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"].startswith("Request was throttled.")
    assert Run.objects.count() == 2


def test_both_endpoints_reject_a_second_event_for_a_taken_run_id_on_retry(api, run_factory):
    """A client that re-sends a run with a new event_id (a bug on its side) learns it."""
    run = run_factory()
    post(api, LENIENT, [run])
    again = {**run, "event_id": str(uuid.uuid4())}
    assert results(post(api, ATOMIC, [again])) == ["failed"]


def test_a_retry_next_to_a_newcomer_for_its_run_id_is_existing_and_the_newcomer_fails(
    api, run_factory
):
    stored = run_factory()
    post(api, LENIENT, [stored])
    newcomer = run_factory(run_id=stored["run_id"])
    response = post(api, LENIENT, [newcomer, stored])
    assert results(response) == ["failed", "existing"]
    assert response.json()["errors"][0]["index"] == 0
    assert Run.objects.get().event_id == uuid.UUID(stored["event_id"])


def test_event_ids_are_echoed_in_one_spelling_whatever_else_the_batch_holds(api, run_factory):
    run = run_factory()
    shouting = run["event_id"].replace("-", "").upper()
    response = post(api, LENIENT, [{**run, "event_id": shouting}, {"bad": 1}])
    assert response.json()["runs"][0]["event_id"] == run["event_id"]


@pytest.mark.parametrize("field", ["run_id", "parent_run_id"])
def test_a_run_id_with_a_slash_fails_its_item(api, run_factory, field):
    response = post(api, LENIENT, [run_factory(**{field: "a/b"})])
    assert response.json()["errors"][0]["error"] == (
        f"{field}: must not contain / or the NUL character"
    )


def test_a_rolled_back_batch_still_reports_what_was_stored_before_as_existing(api, run_factory):
    stored = run_factory()
    post(api, LENIENT, [stored])
    response = post(api, ATOMIC, [stored, run_factory(), run_factory(job_type="")])
    assert results(response) == ["existing", "rolled_back", "failed"]
    assert (response.json()["existing"], response.json()["created"]) == (1, 0)


@pytest.mark.parametrize("url", [LENIENT, ATOMIC])
def test_an_end_time_before_the_start_time_fails_the_item(api, run_factory, url):
    late = run_factory(start_time="2026-01-28T10:30:00Z", end_time="2026-01-28T10:29:59Z")
    body = post(api, url, [late]).json()
    assert body["errors"][0]["error"] == (
        "end_time 2026-01-28T10:29:59+00:00 is before start_time 2026-01-28T10:30:00+00:00"
    )
    assert Run.objects.count() == 0


def test_a_refused_transactional_batch_has_the_error_sentence_every_4xx_has(api, run_factory):
    runs = [run_factory(), run_factory(agent_name=""), run_factory()]
    response = post(api, ATOMIC, runs)
    assert response.status_code == 400
    body = error_body(response)  # and its request_id is the response's
    assert body["error"] == (
        "1 of 3 runs failed, so the batch was rolled back and nothing was stored; see errors."
    )
    assert body["errors"][0]["index"] == 1  # the per-item outcomes stay where they were


def test_a_refused_transactional_dry_run_says_it_would_be_refused(api, run_factory):
    response = post(api, ATOMIC, [run_factory(job_type="")], dry_run="true")
    assert response.status_code == 400
    assert error_body(response)["error"] == (
        "1 of 1 runs failed: this batch would be refused whole; nothing was stored (dry run)."
    )


def test_a_lenient_batch_with_failures_is_a_200_without_an_error_sentence(api, run_factory):
    body = post(api, LENIENT, [run_factory(job_type="")]).json()
    assert "error" not in body and "request_id" not in body


def test_the_answer_is_the_services_result_type_as_the_renderer_encodes_it(
    api, run_factory, monkeypatch
):
    answers = []

    def ingest(**kwargs):
        answers.append(runs_ingest(**kwargs))
        return answers[-1]

    monkeypatch.setattr(services, "runs_ingest", ingest)
    response = post(api, LENIENT, [run_factory(), run_factory(job_type="")])
    assert type(answers[0]) is RunBatchResult
    assert response.content == msgspec.json.encode(answers[0])


@pytest.mark.parametrize("field", ["run_id", "parent_run_id"])
@pytest.mark.parametrize("dots", [".", ".."])
def test_a_run_id_a_url_would_resolve_away_fails_its_item(api, run_factory, field, dots):
    body = post(api, LENIENT, [run_factory(**{field: dots})]).json()
    assert body["errors"][0]["error"] == f"{field}: must not be {dots} (it is a URL path segment)"
    assert Run.objects.count() == 0
