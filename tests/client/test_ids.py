"""Event ids made by the client: UUIDv7, in the order they were made."""

import time
import uuid

from batchsvc.client import new_event_id


def test_new_event_ids_are_rfc_version_7_uuids_with_the_current_time():
    before = time.time_ns() // 1_000_000
    event_id = new_event_id()
    after = time.time_ns() // 1_000_000
    assert event_id.version == 7
    assert event_id.variant == uuid.RFC_4122
    assert before <= event_id.int >> 80 <= after


def test_ids_made_later_sort_later_and_never_repeat():
    ids = []
    for _ in range(5):
        ids.extend(new_event_id() for _ in range(100))
        time.sleep(0.002)
    assert len(set(ids)) == len(ids)
    assert [event_id.int >> 80 for event_id in ids] == sorted(
        event_id.int >> 80 for event_id in ids
    )
    assert ids[0] < ids[-1]
