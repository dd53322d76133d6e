import datetime as dt

import msgspec
import pytest

from batchsvc.api.errors import ApiError
from batchsvc.api.inserts import STAGE_FROM_ROWS
from setuplogs.models import LogEntry
from setuplogs.schemas import LogBatchResult
from setuplogs.services import log_lines_append
from tests.conftest import error_body
from tests.setuplogs.conftest import batch_url, line

pytestmark = pytest.mark.django_db


def post(api, run, logs, **extra):
    return api.post(batch_url(run), {"logs": logs, **extra}, format="json")


def stored(run):
    return list(LogEntry.objects.filter(run=run).values_list("seq", "level", "message"))


def test_it_appends_the_lines_in_order_numbered_from_1(api, run):
    response = post(api, run, [line("one"), line("two", level="error"), line("three")])
    assert response.status_code == 200
    assert response.json() == {"success": True, "logs_added": 3, "duplicates": 0, "skipped": []}
    assert stored(run) == [(1, "info", "one"), (2, "error", "two"), (3, "info", "three")]


def test_the_next_batch_continues_the_numbering(api, run):
    post(api, run, [line("one"), line("two")])
    post(api, run, [line("three")])
    assert [seq for seq, _, _ in stored(run)] == [1, 2, 3]


def test_each_run_has_its_own_numbering(api, run, run_factory):
    other_body = run_factory()
    api.post("/api/v1/runs/", other_body, format="json")
    other = type(run).objects.get(run_id=other_body["run_id"])
    post(api, run, [line("a"), line("b")])
    post(api, other, [line("c")])
    assert stored(other) == [(1, "info", "c")]


def test_invalid_lines_are_skipped_and_reported_by_index_the_others_stored(api, run, settings):
    settings.LOG_MESSAGE_MAX = 10
    logs = [
        line("kept 0"),
        {"level": "info"},
        line("x", level="loud"),
        line("é" * 6),  # 6 characters, 12 bytes
        line("x", timestamp="yesterday"),
        "just a string",
        line("x", client_id=7),
        line("kept 7"),
    ]
    response = post(api, run, logs)
    assert response.status_code == 200
    body = response.json()
    assert (body["logs_added"], body["duplicates"]) == (2, 0)
    assert body["skipped"] == [
        {"index": 1, "error": "message is required"},
        {
            "index": 2,
            "error": "level must be one of debug, info, warning, error, critical, not 'loud'",
        },
        {"index": 3, "error": "message is longer than the limit of 10 bytes"},
        {"index": 4, "error": "timestamp: Invalid RFC3339 encoded datetime"},
        {"index": 5, "error": "item must be a JSON object, not `str`"},
        {"index": 6, "error": "client_id: Expected `str`, got `int`"},
    ]
    assert stored(run) == [(1, "info", "kept 0"), (2, "info", "kept 7")]


def test_a_message_of_exactly_the_limit_in_bytes_is_stored(api, run, settings):
    settings.LOG_MESSAGE_MAX = 10
    response = post(api, run, [line("é" * 5)])
    assert response.json()["logs_added"] == 1


def test_levels_are_case_insensitive_and_warn_means_warning(api, run):
    post(
        api,
        run,
        [line(level="WARN"), line(level="Error"), line(level="DEBUG"), line(level="critical")],
    )
    assert [level for _, level, _ in stored(run)] == ["warning", "error", "debug", "critical"]


def test_a_line_without_a_level_is_info(api, run):
    post(api, run, [{"message": "plain"}])
    assert stored(run) == [(1, "info", "plain")]


def test_the_clients_timestamp_is_kept_and_a_missing_one_is_the_server_time(api, run):
    post(
        api,
        run,
        [
            line("zoned", timestamp="2026-01-23T10:30:45.123+02:00"),
            line("naive", timestamp="2026-01-23T10:30:45"),
            line("none"),
        ],
    )
    zoned, naive, none = LogEntry.objects.filter(run=run)
    assert zoned.timestamp == dt.datetime(2026, 1, 23, 8, 30, 45, 123000, tzinfo=dt.UTC)
    assert naive.timestamp == dt.datetime(2026, 1, 23, 10, 30, 45, tzinfo=dt.UTC)
    assert none.timestamp == none.received_at


def test_a_client_id_already_stored_is_a_duplicate_and_not_stored_again(api, run):
    first = [line("a"), line("b")]
    post(api, run, first)
    response = post(api, run, [first[1], line("c"), first[0]])
    assert response.json() == {"success": True, "logs_added": 1, "duplicates": 2, "skipped": []}
    assert [message for _, _, message in stored(run)] == ["a", "b", "c"]


def test_a_client_id_repeated_in_one_request_is_stored_once(api, run):
    repeated = line("once")
    response = post(api, run, [repeated, line("other"), dict(repeated)])
    assert (response.json()["logs_added"], response.json()["duplicates"]) == (2, 1)
    assert [message for _, _, message in stored(run)] == ["once", "other"]


def test_lines_without_a_client_id_are_never_duplicates(api, run):
    same = {"message": "again", "level": "info"}
    post(api, run, [same, same])
    response = post(api, run, [same])
    assert response.json()["duplicates"] == 0
    assert LogEntry.objects.filter(run=run).count() == 3


@pytest.mark.parametrize(
    "body",
    [{}, {"logs": []}, {"logs": "not a list"}, {"logs": {"message": "x"}}, {"lines": [{}]}],
)
def test_a_missing_empty_or_non_list_logs_is_a_400_and_stores_nothing(api, run, body):
    response = api.post(batch_url(run), body, format="json")
    assert response.status_code == 400
    assert response.json()["error"].startswith("logs array is required")
    assert LogEntry.objects.count() == 0


def test_a_body_that_is_not_an_object_is_a_400(api, run):
    response = api.post(batch_url(run), [line()], format="json")
    assert response.status_code == 400
    assert "JSON object with a logs array" in response.json()["error"]


def test_more_lines_than_the_limit_is_a_400_naming_the_limit(api, run, settings):
    settings.LOGS_BATCH_MAX = 3
    response = post(api, run, [line() for _ in range(4)])
    assert response.status_code == 400
    assert response.json()["error"] == "logs array holds 4 items; the limit is 3 per request."
    assert LogEntry.objects.count() == 0


def test_an_unknown_run_is_a_404_naming_it(api):
    response = api.post("/api/v1/runs/nope/setup_logs", {"logs": [line()]}, format="json")
    assert response.status_code == 404
    assert error_body(response) == {
        "error": "No run with run_id 'nope'.",
        "details": {"run_id": "nope"},
    }


def test_dropped_lines_are_recorded_as_a_warning_before_the_batch(api, run):
    response = post(api, run, [line("after the gap")], dropped=3)
    assert response.json()["logs_added"] == 1
    assert stored(run) == [(1, "warning", "client dropped 3 lines"), (2, "info", "after the gap")]


def test_a_retried_batch_records_its_dropped_lines_once(api, run):
    logs = [line("a"), line("b")]
    post(api, run, logs, dropped=5)
    response = post(api, run, logs, dropped=5)
    assert response.json() == {"success": True, "logs_added": 0, "duplicates": 2, "skipped": []}
    assert [message for _, _, message in stored(run)] == ["client dropped 5 lines", "a", "b"]


def test_a_retried_batch_without_client_ids_records_its_dropped_lines_once(api, run):
    logs = [{"level": "info", "message": "no id"}]
    post(api, run, logs, dropped=2)
    post(api, run, logs, dropped=2)
    messages = [message for _, _, message in stored(run)]
    assert messages.count("client dropped 2 lines") == 1


def test_a_client_line_cannot_take_the_id_of_a_dropped_lines_warning(api, run):
    response = post(api, run, [line(client_id="dropped:abc")])
    assert response.json()["skipped"] == [
        {
            "index": 0,
            "error": "client_id: must not start with 'dropped:' or contain the NUL character",
        }
    ]


def test_dropped_is_recorded_even_when_every_line_is_invalid(api, run):
    response = post(api, run, [{"level": "info"}], dropped=1)
    assert response.json()["logs_added"] == 0
    assert stored(run) == [(1, "warning", "client dropped 1 lines")]


@pytest.mark.parametrize("dropped", [-1, "3", 1.5, None])
def test_an_invalid_dropped_count_is_a_400_and_stores_nothing(api, run, dropped):
    response = post(api, run, [line()], dropped=dropped)
    assert response.status_code == 400
    assert response.json()["error"].startswith("Log lines not stored: dropped")
    assert LogEntry.objects.count() == 0


def test_a_line_with_a_nul_character_is_skipped_as_a_run_with_one_is_refused(api, run):
    response = post(api, run, [line("before\x00after"), line("kept")])
    assert response.json()["skipped"] == [
        {"index": 0, "error": "message: must not contain the NUL character"}
    ]
    assert stored(run) == [(1, "info", "kept")]


def test_a_line_with_an_unknown_key_is_skipped_naming_the_key(api, run):
    response = post(api, run, [line(lvl="info"), line(clientId="x")])
    assert response.json()["skipped"] == [
        {
            "index": 0,
            "error": "unknown key 'lvl'; the keys are: message, level, timestamp, client_id",
        },
        {"index": 1, "error": "unknown key 'clientId' (did you mean client_id?)"},
    ]


def test_a_client_id_longer_than_the_limit_is_skipped(api, run):
    response = post(api, run, [line(client_id="x" * 101)])
    assert response.json()["skipped"][0]["error"].startswith("client_id: Expected `str` of length")


def test_the_response_matches_the_documented_schema(api, run):
    response = post(api, run, [line(), {"message": 1}])
    msgspec.json.decode(response.content, type=LogBatchResult)


@pytest.mark.parametrize("size", [1, STAGE_FROM_ROWS - 1, STAGE_FROM_ROWS, 1000])
def test_a_batch_costs_the_same_queries_whatever_its_size(
    api, run, django_assert_num_queries, connection_vendor, size
):
    # token, run, savepoint, the run's lock (PostgreSQL only), last seq, a savepoint
    # around one INSERT (on PostgreSQL a COPY from STAGE_FROM_ROWS lines on), its
    # release, release. New lines cost no look-up of their client_ids.
    expected = 9 if connection_vendor == "postgresql" else 8
    with django_assert_num_queries(expected) as ctx:
        response = post(api, run, [line(f"line {n}") for n in range(size)])
    assert response.json()["logs_added"] == size
    copied = connection_vendor == "postgresql" and size >= STAGE_FROM_ROWS
    statement = "COPY " if copied else "INSERT INTO"
    assert sum(q["sql"].startswith(statement) for q in ctx.captured_queries) == 1


@pytest.mark.parametrize("size", [2, STAGE_FROM_ROWS, 1000])
def test_a_resent_batch_costs_a_look_up_and_a_second_insert_whatever_its_size(
    api, run, django_assert_num_queries, connection_vendor, size
):
    lines = [line(f"line {n}") for n in range(size)]
    post(api, run, lines[:1])
    # as above, then the refused insert rolled back and its savepoint released, the
    # stored client_ids and one more INSERT (or COPY)
    expected = 12 if connection_vendor == "postgresql" else 11
    with django_assert_num_queries(expected):
        body = post(api, run, lines).json()
    assert (body["logs_added"], body["duplicates"]) == (size - 1, 1)
    assert [seq for seq, _, _ in stored(run)] == list(range(1, size + 1))


def test_appending_needs_authentication(anonymous, run):
    response = anonymous.post(batch_url(run), {"logs": [line()]}, format="json")
    assert response.status_code == 401
    assert LogEntry.objects.count() == 0


def test_appending_is_throttled_with_the_batch_scope_but_reading_is_not(api, run, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"batch": "2/minute"},
    }
    from django.core.cache import cache

    cache.clear()
    assert [post(api, run, [line()]).status_code for _ in range(3)] == [200, 200, 429]
    assert [api.get(batch_url(run)).status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.postgres_only
def test_appending_to_a_run_deleted_since_it_was_looked_up_is_a_404(run):
    type(run).objects.filter(pk=run.pk).delete()
    with pytest.raises(ApiError) as caught:
        # The service takes each line as the raw JSON the body held.
        log_lines_append(run=run, lines=[msgspec.json.encode(line())])
    assert caught.value.status_code == 404


def test_a_resent_batch_mixed_with_new_lines_leaves_no_gap_in_the_seqs(api, run):
    first = [line(f"line {n}") for n in range(3)]
    post(api, run, first)
    # a resend after a lost answer, with new lines between and after the old ones
    mixed = [first[0], line("new 1"), first[1], line("new 2"), first[2], line("new 3")]
    body = post(api, run, mixed).json()
    assert (body["logs_added"], body["duplicates"]) == (3, 3)
    post(api, run, [line("after")], dropped=2)
    stored = list(LogEntry.objects.of_run(run).order_by("seq").values_list("seq", "message"))
    assert [seq for seq, _ in stored] == list(range(1, 9))
    assert [message for _, message in stored][3:] == [
        "new 1",
        "new 2",
        "new 3",
        "client dropped 2 lines",
        "after",
    ]
