"""Overlapping batches sent at the same time by real threads to a real server."""

import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from rest_framework.authtoken.models import Token

from tests.conftest import make_run
from traces.models import Run

pytestmark = pytest.mark.django_db(transaction=True)


def test_overlapping_concurrent_batches_create_each_event_exactly_once(live_server, alice):
    token = Token.objects.create(user=alice).key
    pool = [make_run() for _ in range(300)]
    rng = random.Random(7)
    batches = [rng.sample(pool, 120) for _ in range(12)]

    def send(i):
        url = "/api/v1/runs/batch-transactional" if i % 3 == 0 else "/api/v1/runs/batch"
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            response = http.post(
                url, json={"runs": batches[i]}, headers={"Authorization": f"Token {token}"}
            )
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=6) as executor:
        answers = list(executor.map(send, range(len(batches))))

    assert [status for status, _ in answers] == [201] * len(batches)
    created = Counter(
        item["event_id"]
        for _, body in answers
        for item in body["runs"]
        if item["result"] == "created"
    )
    sent = {run["event_id"] for batch in batches for run in batch}
    assert set(created) == sent
    assert max(created.values()) == 1
    assert Run.objects.count() == len(sent)


def test_two_owners_racing_with_the_same_event_ids_and_run_ids_each_get_their_own(
    live_server, alice, bob
):
    tokens = {user.username: Token.objects.create(user=user).key for user in (alice, bob)}
    pool = [make_run() for _ in range(200)]
    rng = random.Random(11)
    batches = [(("alice", "bob")[i % 2], rng.sample(pool, 100)) for i in range(12)]

    def send(i):
        owner, runs = batches[i]
        url = "/api/v1/runs/batch-transactional" if i % 4 < 2 else "/api/v1/runs/batch"
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            response = http.post(
                url, json={"runs": runs}, headers={"Authorization": f"Token {tokens[owner]}"}
            )
        return owner, response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=6) as executor:
        answers = list(executor.map(send, range(len(batches))))

    assert [status for _, status, _ in answers] == [201] * len(batches)
    for user in (alice, bob):
        created = Counter(
            item["event_id"]
            for owner, _, body in answers
            if owner == user.username
            for item in body["runs"]
            if item["result"] == "created"
        )
        sent = {
            run["event_id"] for owner, runs in batches if owner == user.username for run in runs
        }
        assert set(created) == sent
        assert max(created.values()) == 1
        assert Run.objects.filter(owner=user).count() == len(sent)
    assert Run.objects.count() == Run.objects.filter(owner__in=[alice, bob]).count()


def test_small_and_staged_batches_racing_with_failing_atomic_ones_create_each_event_once(
    live_server, alice
):
    token = Token.objects.create(user=alice).key
    pool = [make_run() for _ in range(300)]
    rng = random.Random(13)
    holder = make_run()
    # Below and above the size from which PostgreSQL stages a batch, and atomic
    # batches rolled back after their insert: one run takes a run_id held by another event.
    batches = [("/api/v1/runs/batch", rng.sample(pool, (10, 120)[i % 2])) for i in range(12)]
    clash = {**make_run(), "run_id": holder["run_id"]}
    batches += [("/api/v1/runs/batch-transactional", [*rng.sample(pool, 99), clash])] * 3

    def send(i):
        url, runs = batches[i]
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            response = http.post(
                url, json={"runs": runs}, headers={"Authorization": f"Token {token}"}
            )
        return response.status_code, response.json()

    for _ in range(2):  # twice: the second time on sessions whose staging tables exist
        Run.objects.all().delete()
        assert send_one(live_server, token, holder) == 201
        order = rng.sample(range(len(batches)), len(batches))
        with ThreadPoolExecutor(max_workers=6) as executor:
            answers = dict(zip(order, executor.map(send, order), strict=True))
        assert [answers[i][0] for i in range(len(batches))] == [201] * 12 + [400] * 3
        created = Counter(
            item["event_id"]
            for status, body in answers.values()
            for item in body["runs"]
            if item["result"] == "created"
        )
        sent = {run["event_id"] for url, runs in batches[:12] for run in runs}
        assert set(created) == sent
        assert max(created.values()) == 1
        assert Run.objects.count() == len(sent) + 1  # and the holder


def send_one(live_server, token, run) -> int:
    with httpx.Client(base_url=live_server.url, timeout=60) as http:
        response = http.post(
            "/api/v1/runs/batch", json={"runs": [run]}, headers={"Authorization": f"Token {token}"}
        )
    return response.status_code
