"""batches.processors.lanes: rate-limit budgets shared by every worker, on both stores (the
database and Redis). The schedule a store hands out is asserted (the slots it
reserved), never how long anything took."""

import itertools
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.db import connection

from batches.engine.counters import stopping
from batches.engine.recovery import batches_recover
from batches.models import Lane as LaneRow
from batches.processors import lanes
from batches.processors.lanes import Budget, Interrupted, Lane
from tests.support.proxy import Proxy
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(params=["database", "redis"])
def store(request, settings):
    """Each test once on the database's lanes and once on Redis's."""
    if request.param == "redis":
        try:
            redis.Redis.from_url(REDIS_URL).ping()
        except redis.ConnectionError:
            pytest.fail("Redis does not answer on 127.0.0.1:6379 (CI and this machine run one)")
        settings.BATCH_LANES_REDIS_URL = REDIS_URL
    else:
        settings.BATCH_LANES_REDIS_URL = ""
    return request.param


@pytest.fixture
def name():
    """A lane name of this test's own (Redis keeps lanes between tests)."""
    return f"test-{uuid.uuid4().hex[:12]}"


def reserve_from_threads(budgets, *, threads: int, each: int, tokens=lambda n: 0) -> list:
    """Every thread reserves ``each`` slots at once, without waiting for them:
    the (start, tokens) of every slot the store handed out."""
    slots, lock = [], threading.Lock()
    barrier = threading.Barrier(threads)

    def run(number):
        try:
            barrier.wait()
            for n in range(each):
                cost = tokens(number * each + n)
                start, _ = lanes.backend().reserve(budgets, cost)
                with lock:
                    slots.append((start, cost))
        finally:
            connection.close()

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sorted(slots)


def most_in_a_minute(slots, weight=lambda slot: 1) -> int:
    """The most requests (or tokens) whose slots start within any 60 seconds."""
    most = 0
    for first, (start, _) in enumerate(slots):
        window = [slot for slot in slots[first:] if slot[0] < start + 60]
        most = max(most, sum(weight(slot) for slot in window))
    return most


def test_threads_reserving_at_once_never_get_more_requests_in_a_minute_than_the_limit(store, name):
    slots = reserve_from_threads([Budget(name, requests_per_minute=50)], threads=8, each=20)

    assert len(slots) == 160
    assert len({start for start, _ in slots}) == 160  # no slot handed out twice
    assert most_in_a_minute(slots) == 50  # the whole budget, never more


def test_threads_reserving_tokens_spend_at_most_the_limit_and_one_call_in_a_minute(store, name):
    budget = Budget(name, tokens_per_minute=1000)
    slots = reserve_from_threads([budget], threads=6, each=10, tokens=lambda n: 20 + n % 7 * 10)

    spent = most_in_a_minute(slots, weight=lambda slot: slot[1])
    # A call is charged as it starts, so a minute may end with one whose tokens
    # drain after it: HEADROOM absorbs that when calls are small against the limit.
    assert 900 < spent <= 1000 + max(cost for _, cost in slots)


def test_a_batch_that_asks_for_less_spends_its_own_lane_and_its_processors(store, name, settings):
    settings.BATCH_RATE_LIMITS = {name: {"requests_per_minute": 600}}
    slow = Lane(name, {"requests_per_minute": 60}, batch_id="b1")
    fast = Lane(name, {}, batch_id="b2")

    starts = [lanes.backend().reserve(slow.budgets, 0)[0] for _ in range(3)]
    other, _ = lanes.backend().reserve(fast.budgets, 0)

    assert [round(b - a, 2) for a, b in itertools.pairwise(starts)] == [1.01, 1.01]
    assert [b.name for b in slow.budgets] == [name, f"{name}:batch:b1"]
    # The other batch waits only for the processor's budget, which the first one spent.
    assert round(other - starts[-1], 3) == round(60 * lanes.HEADROOM / 600, 3)


def test_a_pause_is_seen_by_every_other_acquirer_of_the_lane(store, name, settings):
    settings.BATCH_RATE_LIMITS = {name: {"requests_per_minute": 6000}}
    Lane(name, {}).pause(30)

    start, now = lanes.backend().reserve(Lane(name, {}).budgets, 0)
    until = lanes.paused_until(name)

    assert 29 < start - now <= 30
    assert until is not None
    assert timedelta(seconds=29) < until - datetime.now(UTC) <= timedelta(seconds=31)
    assert lanes.backend().paused_for(name) > 29  # an unlimited lane's acquirers too


@pytest.fixture
def clock(monkeypatch):
    """The lanes' monotonic clock, moved by hand; and the waits acquire asks for."""
    now = [1000.0]
    monkeypatch.setattr(lanes.time, "monotonic", lambda: now[0])
    waits = []
    monkeypatch.setattr(stopping, "wait", lambda seconds: waits.append(seconds) or False)
    return now, waits


def test_an_unlimited_lane_looks_up_its_pause_every_quarter_second(store, name, clock, monkeypatch):
    now, waits = clock
    looks = []
    backend = type(lanes.backend())
    real = backend.paused_for
    monkeypatch.setattr(backend, "paused_for", lambda self, n: looks.append(n) or real(self, n))
    lane = Lane(name, {})

    for _ in range(50):
        lane.acquire()
    lanes.backend().pause(name, 30)  # another machine's 429
    lane.acquire()
    assert (looks, waits) == ([name], [])  # looked up once, not yet paused

    now[0] += lanes.PAUSE_LOOK_SECONDS
    lane.acquire()
    assert len(looks) == 2
    assert len(waits) == 1 and 29 < waits[0] <= 30


def test_an_unlimited_lane_waits_for_its_own_processs_pause_at_once(store, name, clock):
    _, waits = clock
    lane = Lane(name, {})
    lane.acquire()
    assert waits == []

    Lane(name, {}).pause(30)  # another thread's 429, no time later
    lane.acquire()
    assert len(waits) == 1 and 29 < waits[0] <= 30


def test_a_shorter_pause_does_not_shorten_a_longer_one(store, name):
    lane = Lane(name, {})
    lane.pause(40)
    lane.pause(5)
    assert lanes.backend().paused_for(name) > 35


def test_a_lane_without_a_pause_or_a_spent_budget_says_nothing_is_waited_for(store, name):
    assert lanes.paused_until(name) is None
    assert lanes.limited_until(name) is None


def test_limited_until_says_when_a_lane_whose_budget_is_reserved_ahead_starts_again(store, name):
    budget = Budget(name, requests_per_minute=6)  # 10 s a request
    for _ in range(3):
        lanes.backend().reserve([budget], 0)

    until = lanes.limited_until(name)

    assert until is not None
    assert timedelta(seconds=25) < until - datetime.now(UTC) <= timedelta(seconds=31)
    assert lanes.paused_until(name) is None  # spent, not paused


def test_tokens_the_answer_did_not_use_are_given_back_to_the_lane(store, name):
    budget = Budget(name, tokens_per_minute=6000)  # 0.0101 s a token
    first, _ = lanes.backend().reserve([budget], 100)
    lanes.backend().spend([budget], -60)  # the call used 40
    second, _ = lanes.backend().reserve([budget], 100)

    assert round(second - first, 4) == round(40 * 60 * lanes.HEADROOM / 6000, 4)


def test_a_waiting_acquire_is_interrupted_when_the_worker_stops(store, name, settings):
    settings.BATCH_RATE_LIMITS = {name: {"requests_per_minute": 1}}
    lane = Lane(name, {})
    lane.acquire()  # the first slot is now; the next in a minute
    stopping.set()
    try:
        with pytest.raises(Interrupted):
            lane.acquire()
    finally:
        stopping.clear()


def test_the_database_store_keeps_one_row_per_lane(settings, name):
    settings.BATCH_LANES_REDIS_URL = ""
    settings.BATCH_RATE_LIMITS = {name: {"requests_per_minute": 600}}
    lane = Lane(name, {"tokens_per_minute": 100}, batch_id="b")
    lane.acquire(0)
    lane.pause(1)
    assert sorted(LaneRow.objects.filter(name__startswith=name).values_list("name", flat=True)) == [
        name,
        f"{name}:batch:b",
    ]


def test_a_batch_lane_nothing_waits_on_is_deleted_and_a_busy_one_is_kept(settings, name):
    settings.BATCH_LANES_REDIS_URL = ""
    store = lanes.backend()
    processor, busy, done = Budget(name), f"{name}:batch:busy", f"{name}:batch:done"
    store.reserve([processor, Budget(busy, requests_per_minute=1)], 0)  # next slot in 60 s
    store.reserve([Budget(done, requests_per_minute=60_000)], 0)  # next slot in 1 ms
    store.pause(f"{name}:batch:paused", 60)
    wait_until(lambda: store.state(done)[0] > store.state(done)[1])

    assert lanes.forget_idle() == 1

    names = LaneRow.objects.filter(name__startswith=name).values_list("name", flat=True)
    assert sorted(names) == [name, busy, f"{name}:batch:paused"]
    start, now = store.reserve([Budget(done, requests_per_minute=60)], 0)
    assert start == now  # a lane without its row reserves as an idle one did


def test_the_workers_sweep_deletes_the_lanes_finished_batches_left(settings, name):
    settings.BATCH_LANES_REDIS_URL = ""
    lanes.backend().reserve([Budget(f"{name}:batch:1", requests_per_minute=60_000)], 0)
    wait_until(lambda: lanes.limited_until(f"{name}:batch:1") is None)

    batches_recover()

    assert not LaneRow.objects.filter(name__startswith=name).exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"requests_per_minute": 501}, "requests_per_minute may be at most 500"),
        ({"tokens_per_minute": 10**6}, "tokens_per_minute may be at most 200000"),
        ({"requests_per_minute": 0}, "requests_per_minute must be a whole number above 0"),
        ({"tokens_per_minute": "100"}, "tokens_per_minute must be a whole number above 0"),
        ({"requests_per_minute": True}, "requests_per_minute must be a whole number above 0"),
    ],
)
def test_a_batch_may_only_lower_the_limits(settings, options, message):
    settings.BATCH_RATE_LIMITS = {
        "openai": {"requests_per_minute": 500, "tokens_per_minute": 200_000}
    }
    with pytest.raises(ValueError, match=message):
        lanes.check_options("openai", options)
    lanes.check_options("openai", {"requests_per_minute": 500, "tokens_per_minute": 1})


def test_a_redis_outage_is_waited_out_and_the_call_then_gets_its_slot(settings, name, caplog):
    proxy = Proxy(REDIS_URL.replace("redis://", "http://")).start()
    settings.BATCH_LANES_REDIS_URL = f"redis://127.0.0.1:{proxy.port}/0"
    settings.BATCH_RATE_LIMITS = {name: {"requests_per_minute": 6000}}
    lane = Lane(name, {})
    proxy.stop()
    got = threading.Event()
    waiting = threading.Thread(target=lambda: (lane.acquire(), got.set()), daemon=True)
    waiting.start()
    try:
        wait_until(lambda: "Rate limits: Redis is unavailable" in caplog.text, timeout=15)
        assert not got.is_set()
        proxy.start()
        assert got.wait(15)
        assert "Rate limits: Redis is back after" in caplog.text
        _, free, _ = lanes.backend().state(name)
        assert free > 0  # the slot it got is in Redis's schedule
    finally:
        proxy.stop()
