"""Event ids made by the client: UUIDv7 strings, in the order they were made."""

import itertools
import time
import uuid

from batchsvc_client import new_event_id


def test_new_event_ids_are_rfc_version_7_uuid_strings_with_the_current_time():
    before = time.time_ns() // 1_000_000
    event_id = new_event_id()
    after = time.time_ns() // 1_000_000
    assert isinstance(event_id, str)
    parsed = uuid.UUID(event_id)
    assert str(parsed) == event_id
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert before <= parsed.int >> 80 <= after


def test_ids_made_later_sort_later_and_never_repeat():
    ids = []
    for _ in range(5):
        ids.extend(new_event_id() for _ in range(100))
        time.sleep(0.002)
    assert len(set(ids)) == len(ids)
    millis = [uuid.UUID(event_id).int >> 80 for event_id in ids]
    assert millis == sorted(millis)
    # As strings too, from one millisecond to the next: the server's index sees
    # them in the order they were made.
    rounds = [ids[start : start + 100] for start in range(0, len(ids), 100)]
    assert all(max(a) < min(b) for a, b in itertools.pairwise(rounds))
