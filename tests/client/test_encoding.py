"""The JSON the client sends: UUIDs and datetimes as strings, anything else refused."""

import datetime as dt
import json
import uuid

import pytest
from batchsvc_client._http import encode_json


def test_uuids_dates_and_datetimes_are_sent_as_strings():
    event_id = uuid.uuid4()
    when = dt.datetime(2026, 1, 28, 10, 30, tzinfo=dt.UTC)
    body = {"event_id": event_id, "start_time": when, "day": dt.date(2026, 1, 28), "n": [1]}
    assert json.loads(encode_json(body)) == {
        "event_id": str(event_id),
        "start_time": "2026-01-28T10:30:00+00:00",
        "day": "2026-01-28",
        "n": [1],
    }


def test_a_value_json_cannot_hold_is_refused_naming_its_type():
    with pytest.raises(TypeError, match="Object of type set is not JSON serializable"):
        encode_json({"tags": {"a"}})


def test_text_is_sent_as_utf8_without_escapes_and_without_spaces():
    assert encode_json({"q": "café ☕"}) == '{"q":"café ☕"}'.encode()
