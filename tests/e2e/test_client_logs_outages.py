"""LogBatcher through outages: a front server (tests/e2e/front.py) stands in for
the server while its database is down (503 + Retry-After), fails every request,
answers too late or closes its port, and forwards to the live server otherwise."""

import os
import time

import pytest
from batchsvc_client import Client, LogBatcher

from setuplogs.models import LogEntry
from tests.support.logs import messages
from tests.support.waiting import WAIT, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

# The long outage of the suite: a database failover can take this long.
LONG_OUTAGE = float(os.environ.get("BATCHSVC_TEST_OUTAGE_SECONDS", "30"))


def test_lines_added_during_an_outage_stay_buffered_and_arrive_once_in_order(front, token, run_id):
    client = Client(front.url, token=token, backoff=0.05, max_backoff=0.5)
    batcher = LogBatcher(client, run_id, max_batch_size=5, flush_interval=0.2)
    batcher.add("info", "before")
    assert wait_until(lambda: messages(run_id) == ["before"])

    front.outage([("unavailable", 1.0), ("down", 1.0)])
    during = [f"during {n}" for n in range(23)]
    for message in during:
        batcher.add("info", message)
    assert wait_until(lambda: batcher.buffered == 23)
    assert front.outage_over.wait(WAIT)
    batcher.add("info", "after")
    batcher.close()
    client.close()

    assert messages(run_id) == ["before", *during, "after"]
    assert 503 in front.statuses("setup_logs")
    stats = batcher.stats
    assert (stats["dropped"], stats["fallbacks"], stats["individual_sends"]) == (0, 0, 0)


def test_a_server_failing_every_line_for_a_while_loses_none_of_them(front, token, run_id):
    client = Client(front.url, token=token, backoff=0.01, max_backoff=0.05)
    batcher = LogBatcher(client, run_id, max_batch_size=5, flush_interval=0.1)
    front.mode = "failing"
    lines = [f"line {n}" for n in range(8)]
    for message in lines:
        batcher.add("info", message)
    # The first line has failed often enough to be given up, but the notice of
    # its loss failed too: the server is broken, not the line.
    assert wait_until(lambda: any(b"-given-up" in seen.body for seen in front.seen))

    front.mode = "up"
    batcher.close()
    client.close()
    assert messages(run_id) == lines
    assert (batcher.stats["dropped"], batcher.stats["rejected"]) == (0, 0)


def test_lines_dropped_from_a_full_buffer_during_an_outage_are_reported_after_it(
    front, token, run_id
):
    client = Client(front.url, token=token, backoff=0.05, max_backoff=0.5)
    front.mode = "unavailable"
    batcher = LogBatcher(client, run_id, max_batch_size=5, max_buffer=10)
    for n in range(14):
        batcher.add("info", f"line {n}")
    assert wait_until(lambda: batcher.stats["dropped"] == 4 and batcher.buffered == 10)

    front.mode = "up"
    batcher.close()
    client.close()
    entries = LogEntry.objects.filter(run__run_id=run_id)
    assert [(e.level, e.message) for e in entries] == [
        ("warning", "client dropped 4 lines"),
        *[("info", f"line {n}") for n in range(4, 14)],
    ]
    first_taken = next(seen for seen in front.seen if seen.status in (200, 201))
    assert first_taken.json()["dropped"] == 4


def test_lines_whose_answer_came_too_late_are_sent_again_and_stored_once(front, token, run_id):
    client = Client(front.url, token=token, timeout=0.3, backoff=0.05, max_backoff=0.5)
    front.mode, front.slow_seconds = "slow", 1.0
    batcher = LogBatcher(client, run_id, max_batch_size=5)
    lines = [f"line {n}" for n in range(5)]
    for message in lines:
        batcher.add("info", message)
    # The server stores the batch after the client stopped waiting for it.
    assert wait_until(lambda: len(messages(run_id)) == 5)

    front.mode = "up"
    batcher.close()
    client.close()
    assert messages(run_id) == lines
    assert LogEntry.objects.count() == 5
    assert batcher.stats["dropped"] == 0


def test_nothing_is_lost_over_a_long_outage(front, token, run_id):
    client = Client(front.url, token=token, backoff=0.1, max_backoff=2)
    batcher = LogBatcher(client, run_id, max_batch_size=10, flush_interval=0.5)
    batcher.add("info", "before")
    assert wait_until(lambda: messages(run_id) == ["before"])

    # The database fails over, and the web process restarts in the middle of it.
    t = LONG_OUTAGE
    front.outage([("unavailable", 0.5 * t), ("down", 0.2 * t), ("unavailable", 0.3 * t)])
    during, most_buffered = [], 0
    while not front.outage_over.is_set():  # a job logging through it all
        during.append(f"during {len(during)}")
        batcher.add("info", during[-1])
        most_buffered = max(most_buffered, batcher.buffered)
        time.sleep(0.1)
    batcher.add("info", "after")
    batcher.close(timeout=WAIT)
    client.close()

    assert messages(run_id) == ["before", *during, "after"]
    assert batcher.stats["dropped"] == 0
    assert most_buffered > 2 * batcher.max_batch_size
    assert front.statuses("setup_logs").count(503) > 2
