"""Retry-After read as RFC 9110 says, and the client's backoff with its jitter."""

import datetime as dt

import pytest
from batchsvc_client.retry import parse_retry_after, retry_delay

NOW = dt.datetime(1994, 11, 6, 8, 49, 7, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Sun, 06 Nov 1994 08:49:37 GMT", 30.0),  # IMF-fixdate
        ("Sunday, 06-Nov-94 08:49:37 GMT", 30.0),  # obsolete RFC 850
        ("Sun Nov  6 08:49:37 1994", 30.0),  # obsolete asctime, no zone: GMT
    ],
)
def test_delay_seconds_and_every_http_date_format_are_read(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


def test_a_date_already_past_means_no_wait_rather_than_a_negative_one():
    assert parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now=NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "١٢", "12 s"])
def test_a_missing_or_unreadable_value_is_none(value):
    assert parse_retry_after(value, now=NOW) is None


def test_without_a_hint_the_delay_doubles_up_to_the_cap():
    delays = [retry_delay(attempt, None, 0.5, 3.0, jitter=lambda: 0.0) for attempt in range(5)]
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_the_servers_hint_is_waited_for_but_never_less_than_the_backoff():
    assert retry_delay(4, 7.0, 0.5, 3.0, jitter=lambda: 0.0) == 7.0
    assert retry_delay(0, 0.0, 0.5, 3.0, jitter=lambda: 0.0) == 0.5


def test_the_jitter_only_lengthens_the_wait_by_at_most_a_tenth():
    assert retry_delay(0, 10.0, 0.5, 3.0, jitter=lambda: 0.0) == 10.0
    assert retry_delay(0, 10.0, 0.5, 3.0, jitter=lambda: 0.999) == pytest.approx(10.999)
