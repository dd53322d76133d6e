"""Appends to one run sent at the same time by real threads to a real server."""

import random
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from setuplogs.models import LogEntry
from tests.conftest import make_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def send(live_server, token, api):
    run = make_run()
    assert api.post("/api/v1/runs/", run, format="json").status_code == 201
    base = f"/api/v1/runs/{run['run_id']}"

    def send(path, body):
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            response = http.post(
                base + path, json=body, headers={"Authorization": f"Token {token}"}
            )
        return response.status_code, response.json()

    return send


def lines(prefix, count):
    return [{"message": f"{prefix} {n}", "client_id": uuid.uuid4().hex} for n in range(count)]


def test_concurrent_appends_to_one_run_get_unique_gapless_seqs_in_each_requests_order(send):
    batches = [lines(f"batch {b}", 50) for b in range(10)]
    singles = lines("single", 10)
    jobs = [("/setup_logs", {"logs": batch}) for batch in batches]
    jobs += [("/setup_log", line) for line in singles]
    random.Random(3).shuffle(jobs)

    with ThreadPoolExecutor(max_workers=6) as executor:
        answers = list(executor.map(lambda job: send(*job), jobs))

    assert sorted({status for status, _ in answers}) == [200, 201]
    entries = list(LogEntry.objects.order_by("seq").values_list("seq", "message"))
    assert [seq for seq, _ in entries] == list(range(1, 511))
    # A batch's lines are consecutive and in order: one transaction, one insert.
    for b in range(10):
        seqs = [seq for seq, message in entries if message.startswith(f"batch {b} ")]
        assert seqs == list(range(seqs[0], seqs[0] + 50))


def test_overlapping_concurrent_batches_store_each_client_id_once(send):
    pool = lines("line", 200)
    rng = random.Random(5)
    batches = [rng.sample(pool, 80) for _ in range(12)]

    with ThreadPoolExecutor(max_workers=6) as executor:
        answers = list(executor.map(lambda b: send("/setup_logs", {"logs": b}), batches))

    assert [status for status, _ in answers] == [200] * 12
    sent = {line["client_id"] for batch in batches for line in batch}
    stored = list(LogEntry.objects.values_list("client_id", flat=True))
    assert sorted(stored) == sorted(sent)
    assert sum(body["logs_added"] for _, body in answers) == len(sent)
    assert sum(body["duplicates"] for _, body in answers) == 12 * 80 - len(sent)
