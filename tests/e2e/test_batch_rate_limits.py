"""Provider rate limits shared by real ``db_worker`` processes, against a stub model
API on 127.0.0.1 that enforces its limit as a provider does (bench/_model_stub.py).
Counts come from the stub; no wall-clock time is asserted."""

import json
import math

import pytest
from django_tasks_db.models import DBTaskResult

from batches.models import InteractionStatus
from batches.processors import lanes
from bench._model_stub import ModelStub
from tests.batches.factories import finished, make_batch
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def model_api(settings):
    stubs = []

    def start(**limits):
        stubs.append(ModelStub(**limits))
        settings.OPENAI_BASE_URL = stubs[-1].url + "/v1"
        return stubs[-1]

    yield start
    for stub in stubs:
        stub.stop()


def single_rows(count: int) -> list[tuple[str, str]]:
    return [(f"Question {n}: what is {n} + {n}?", "") for n in range(count)]


def worker_env(stub, **more) -> dict:
    return {"OPENAI_BASE_URL": stub.url + "/v1", "BATCH_CONCURRENCY": 4, **more}


def worker_processes(batch) -> set:
    tasks = {
        claim.split("/")[0] for claim in batch.interactions.values_list("claimed_by", flat=True)
    }
    runs = DBTaskResult.objects.filter(pk__in=tasks).values_list("worker_ids", flat=True)
    return {ids[-1] for ids in runs}


@pytest.mark.parametrize("store", ["database", "redis"])
def test_two_workers_share_one_request_budget_and_never_meet_a_429(
    alice, start_worker, model_api, store
):
    # 15 requests in any 3 seconds is 300 a minute. The workers are given 5 % less: in
    # a window 20 times shorter than a minute, the network's and the machine's jitter
    # weighs 20 times more than against a provider's minute (see lanes.HEADROOM).
    stub = model_api(delay=0.05, requests_per_window=15, window=3.0)
    env = worker_env(stub, BATCH_RATE_LIMITS=json.dumps({"openai": {"requests_per_minute": 285}}))
    if store == "redis":
        env["CACHE_URL"] = REDIS_URL
    batch = make_batch(alice, single_rows(40), processor="openai")
    start_worker(**env)
    start_worker(**env)

    done = wait_until(lambda: finished(batch.pk), message="batch end")

    assert (done.status, done.processed_items) == ("processed", 40)
    assert stub.rejected() == 0
    assert stub.accepted() == 40
    assert stub.windows()[1] <= 15  # in every 3 seconds, at most the limit
    assert len(worker_processes(batch)) == 2


def test_a_429_pauses_every_workers_calls_and_spends_no_retry(alice, start_worker, model_api):
    stub = model_api(delay=0.2)
    env = worker_env(stub, BATCH_PROCESSOR_RETRIES=0)
    batch = make_batch(alice, single_rows(200), processor="openai")
    start_worker(**env)
    start_worker(**env)
    wait_until(lambda: stub.accepted() >= 10, message="calls under way")

    stub.reject_next(3)
    done = wait_until(lambda: finished(batch.pk), message="batch end")

    assert (done.status, done.processed_items, done.failed_items) == ("processed", 200, 0)
    assert stub.rejected() == 1
    # During the 3 s pause, unpaused threads would send about 8 * 3 / 0.2 = 120 calls.
    # Paused, a thread sends only the call already on its way, and those it starts
    # before its process next looks at the lane (at most PAUSE_LOOK_SECONDS later; a
    # call takes 0.2 s), with 0.15 s more for the pause to be written.
    per_thread = 1 + math.ceil((lanes.PAUSE_LOOK_SECONDS + 0.15) / 0.2)
    assert stub.arrived_in_asked_pause() <= 2 * 4 * per_thread
    assert set(batch.interactions.values_list("status", flat=True)) == {InteractionStatus.SUCCEEDED}
    assert set(batch.interactions.values_list("attempts", flat=True)) == {1}
