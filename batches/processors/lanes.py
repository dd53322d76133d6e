"""Provider rate limits: one budget per processor shared by every worker thread on
every machine (BATCH_RATE_LIMITS), and the pause a 429 asks for.

A *lane* is a processor's budget; an owner whose quota gives them a share of it
(QUOTA_PROVIDER_SHARE, or their own in the admin) has a lane of that share, and a
batch whose options ask for less (``requests_per_minute``, ``tokens_per_minute``) has
a lane of its own as well: its calls spend from each.

A lane is spent as a schedule rather than a counter (the generic cell rate
algorithm's "virtual scheduling"): it keeps the time at which its
next request may start and the time at which its token budget is free again. A call
reserves the next slot, at the latest of now, those times and the lane's pause, and
moves them on by 60 / requests_per_minute seconds and by its tokens * 60 /
tokens_per_minute seconds; its thread then sleeps until the slot. So requests are
spread evenly, no 60-second window holds more than the limit, and a call costs one
short transaction whether it waits or not. Tokens are estimated before the call;
once the answer says how many it used, the token time is moved by the difference.

Lanes live in the Lane table (a row each, locked while a slot is reserved) or, when
BATCH_LANES_REDIS_URL is set (CACHE_URL is Redis), in Redis hashes changed by Lua
scripts; never in a process's memory, which only remembers for PAUSE_LOOK_SECONDS what
the store last said of an unlimited lane's pause. Both take the time from the store's
clock, so machines whose clocks differ still share one schedule.
"""

import functools
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from batches.engine.counters import stopping
from batches.models import Lane as LaneRow
from batches.models import Quota
from batchsvc.ops.outages import STORE_ERRORS, retry_while_unavailable

OPTIONS = ("requests_per_minute", "tokens_per_minute")
# One percent of each limit is left unused: it absorbs the network's jitter between the
# moment a slot starts here and the moment the provider counts the request.
HEADROOM = 1.01
# The longest pause a Retry-After may impose on a lane, in seconds.
MAX_PAUSE = 300.0
# Seconds a Redis lane outlives its schedule.
KEEP = 120
REDIS_PREFIX = "batchsvc:lane:"
PAUSED_SQL = "SELECT paused_until FROM {table} WHERE name = %s"
# How often a process looks up the pause of a lane without limits: another machine's
# 429 pauses this one's calls at most this late.
PAUSE_LOOK_SECONDS = 0.25
NOW_SQL = {
    "sqlite": "SELECT (julianday('now') - 2440587.5) * 86400.0",
    "postgresql": "SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8",
}


# Processor -> (when this process last looked up its pause, when the pause ends), in
# time.monotonic(): a look-up's answer, not the lane's state (which is in the store).
_pauses: dict[str, tuple[float, float]] = {}


class Interrupted(Exception):
    """The worker is stopping while this call waits for its slot: the item is left
    for the next worker, neither run nor failed."""


@dataclass(frozen=True)
class Budget:
    """One lane's limits; None is no limit."""

    name: str
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    @property
    def per_request(self) -> float:
        """Seconds of the schedule one request takes (0: no request limit)."""
        return 60 * HEADROOM / self.requests_per_minute if self.requests_per_minute else 0.0

    @property
    def per_token(self) -> float:
        return 60 * HEADROOM / self.tokens_per_minute if self.tokens_per_minute else 0.0


def limits_of(processor: str) -> dict:
    return settings.BATCH_RATE_LIMITS.get(processor, {})


def check_options(processor: str, options: dict) -> None:
    """ValueError with a sentence when a batch's limit is not a whole number above 0,
    or is above the processor's limit in BATCH_RATE_LIMITS (a batch may only lower it)."""
    for key in OPTIONS:
        if key not in options:
            continue
        value = options[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"The {processor} processor's {key} must be a whole number above 0.")
        most = limits_of(processor).get(key)
        if most is not None and value > most:
            raise ValueError(
                f"The {processor} processor's {key} may be at most {most} (its limit in "
                "BATCH_RATE_LIMITS); a batch may only lower it."
            )


class Lane:
    """What one processor's calls spend: its processor's budget and, when the batch's
    options ask for less, the batch's own."""

    def __init__(self, processor: str, options: dict, batch_id=None, owner_id=None):
        self.processor = processor
        limits = limits_of(processor)
        self.budgets = [Budget(processor, **limits)]
        share = Quota.of(owner_id).provider_share if owner_id is not None and limits else 1.0
        if share < 1:
            # The owner's share of the processor's budget, spent by all their batches.
            shared = {key: max(1, int(value * share)) for key, value in limits.items()}
            self.budgets.append(Budget(f"{processor}:owner:{owner_id}", **shared))
        own = {key: options[key] for key in OPTIONS if key in options}
        if own and batch_id is not None:
            self.budgets.append(Budget(f"{processor}:batch:{batch_id}", **own))
        self.limited = any(b.per_request or b.per_token for b in self.budgets)

    def acquire(self, tokens: int = 0) -> None:
        """Wait for this call's slot; Interrupted when the worker stops meanwhile."""
        if self.limited:
            start, now = _store(lambda store: store.reserve(self.budgets, tokens))
            delay = start - now
        else:
            delay = self.paused_for()
        if delay > 0 and stopping.wait(delay):
            raise Interrupted(f"The worker stopped while the {self.processor} lane waited.")

    def paused_for(self) -> float:
        """Seconds until the processor's pause ends, looked up in the store at most
        every PAUSE_LOOK_SECONDS by this process: with a fast provider the look-up was
        a statement for every call."""
        now = time.monotonic()
        looked_at, until = _pauses.get(self.processor, (-PAUSE_LOOK_SECONDS, 0.0))
        if now - looked_at >= PAUSE_LOOK_SECONDS:
            until = now + _store(lambda store: store.paused_for(self.processor))
            _pauses[self.processor] = (now, until)
        return max(0.0, until - now)

    def correct(self, tokens: int) -> None:
        """The call used ``tokens`` more than it reserved (fewer when negative)."""
        budgets = [b for b in self.budgets if b.per_token]
        if tokens and budgets:
            _store(lambda store: store.spend(budgets, tokens))

    def pause(self, seconds: float) -> None:
        """The provider asked everyone to wait ``seconds`` (a 429's Retry-After)."""
        _store(lambda store: store.pause(self.processor, min(max(seconds, 0.0), MAX_PAUSE)))
        _pauses.pop(self.processor, None)  # this process's next call looks again

    def limited_until(self) -> datetime | None:
        """When this lane's next call may start, if later than now (its processor's
        pause or spent budget, or the batch's own)."""
        times = [limited_until(budget.name) for budget in self.budgets]
        return max((time for time in times if time is not None), default=None)


def paused_until(processor: str) -> datetime | None:
    """Until when a 429's Retry-After pauses ``processor``'s lane, for every worker;
    None when it is not paused."""
    now, _, paused = backend().state(processor)
    return _when(paused) if paused > now else None


def limited_until(processor: str) -> datetime | None:
    """When ``processor``'s lane may start its next request, if that is later than
    now: the end of a pause, or of the budget already spent or reserved (by threads
    waiting for their slot). None when a request could start at once."""
    now, free, paused = backend().state(processor)
    later = max(free, paused)
    return _when(later) if later > now else None


def forget_idle() -> int:
    """Delete the lanes of batches with limits of their own that nothing waits on
    (their every time has passed); how many. Redis lanes expire by themselves."""
    return backend().forget_idle()


def _when(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _store(step):
    """``step(backend())``, waiting out an outage of the database or Redis like every
    worker step."""
    try:
        return retry_while_unavailable(
            lambda: step(backend()),
            what="Rate limits",
            stop=stopping,
            errors=STORE_ERRORS,
            store="Redis" if settings.BATCH_LANES_REDIS_URL else "the database",
        )
    except STORE_ERRORS:
        raise Interrupted("The worker stopped while the lanes' store was unavailable.") from None


def backend():
    url = settings.BATCH_LANES_REDIS_URL
    return RedisLanes(_redis(url)) if url else DatabaseLanes()


@functools.cache
def _redis(url: str) -> redis.Redis:
    # A connection pool per process and URL, shared by the process's threads.
    return redis.Redis.from_url(url)


class DatabaseLanes:
    """Lanes in the Lane table: rows locked (SELECT ... FOR UPDATE on PostgreSQL, an
    IMMEDIATE transaction on SQLite) while a slot is reserved."""

    def reserve(self, budgets: list[Budget], tokens: int) -> tuple[float, float]:
        """Reserve the next slot of every budget: (when it starts, now), Unix seconds."""
        with transaction.atomic():
            rows = self._locked([b.name for b in budgets])
            now = self._now()
            start = max([now, *(max(r.requests_at, r.tokens_at, r.paused_until) for r in rows)])
            for budget in budgets:
                fields = {}
                if budget.per_request:
                    fields["requests_at"] = start + budget.per_request
                if budget.per_token:
                    fields["tokens_at"] = start + budget.per_token * tokens
                if fields:
                    LaneRow.objects.filter(pk=budget.name).update(**fields)
        return start, now

    def spend(self, budgets: list[Budget], tokens: int) -> None:
        with transaction.atomic():
            for budget in budgets:
                LaneRow.objects.filter(pk=budget.name).update(
                    tokens_at=F("tokens_at") + budget.per_token * tokens
                )

    def pause(self, name: str, seconds: float) -> None:
        with transaction.atomic():
            [row] = self._locked([name])
            until = self._now() + seconds
            if until > row.paused_until:
                LaneRow.objects.filter(pk=name).update(paused_until=until)

    def paused_for(self, name: str) -> float:
        """Seconds until the lane's pause ends (0 when not paused)."""
        # Plain SQL: every call of a lane without limits asks, and building the ORM's
        # query cost more than running it.
        table = connection.ops.quote_name(LaneRow._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(PAUSED_SQL.format(table=table), [name])
            row = cursor.fetchone()
        paused = row[0] if row else 0.0
        # Read the clock only for a lane ever paused: every call of a lane without
        # limits asks.
        return max(0.0, paused - self._now()) if paused else 0.0

    def state(self, name: str) -> tuple[float, float, float]:
        """(now, when the budget is free, when the pause ends), Unix seconds."""
        row = LaneRow.objects.filter(pk=name).first() or LaneRow(name=name)
        return self._now(), max(row.requests_at, row.tokens_at), row.paused_until

    def forget_idle(self) -> int:
        # A row whose times have all passed reserves exactly as no row does. A lane
        # being reserved is locked, and its new times are in the future when the
        # DELETE, waiting for that lock, checks them again.
        now = self._now()
        idle = LaneRow.objects.filter(
            name__contains=":batch:",
            requests_at__lt=now,
            tokens_at__lt=now,
            paused_until__lt=now,
        )
        return idle.delete()[0]

    def _locked(self, names: list[str]) -> list[LaneRow]:
        query = LaneRow.objects.select_for_update().filter(name__in=names).order_by("name")
        rows = list(query)
        if len(rows) < len(set(names)):
            LaneRow.objects.bulk_create([LaneRow(name=n) for n in names], ignore_conflicts=True)
            rows = list(query.all())  # a fresh query: the first one cached its rows
        return rows

    def _now(self) -> float:
        # Read after the rows are locked: the time the lock was waited for counts.
        with connection.cursor() as cursor:
            cursor.execute(NOW_SQL[connection.vendor])
            return float(cursor.fetchone()[0])


RESERVE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local start = now
for _, key in ipairs(KEYS) do
  for _, value in ipairs(redis.call('HMGET', key, 'requests_at', 'tokens_at', 'paused_until')) do
    local at = tonumber(value)
    if at and at > start then start = at end
  end
end
local tokens = tonumber(ARGV[1])
local keep = tonumber(ARGV[2])
for i, key in ipairs(KEYS) do
  local per_request, per_token = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
  if per_request > 0 then
    redis.call('HSET', key, 'requests_at', string.format('%.6f', start + per_request))
  end
  if per_token > 0 then
    redis.call('HSET', key, 'tokens_at', string.format('%.6f', start + per_token * tokens))
  end
  redis.call('EXPIRE', key, math.ceil(start - now + per_request + per_token * tokens) + keep)
end
return {string.format('%.6f', start), string.format('%.6f', now)}
"""
SPEND = """
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    redis.call('HINCRBYFLOAT', key, 'tokens_at', ARGV[i])
  end
end
"""
PAUSE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local seconds = tonumber(ARGV[1])
local current = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or '0')
if now + seconds > current then
  redis.call('HSET', KEYS[1], 'paused_until', string.format('%.6f', now + seconds))
end
local ttl = redis.call('TTL', KEYS[1])
local wanted = math.ceil(seconds) + tonumber(ARGV[2])
if ttl >= 0 and ttl < wanted or ttl == -1 then redis.call('EXPIRE', KEYS[1], wanted) end
"""
STATE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local values = redis.call('HMGET', KEYS[1], 'requests_at', 'tokens_at', 'paused_until')
return {string.format('%.6f', now), values[1] or '0', values[2] or '0', values[3] or '0'}
"""


class RedisLanes:
    """Lanes as Redis hashes (``batchsvc:lane:<name>``), each change one Lua script,
    which Redis runs atomically; a lane expires once its schedule is past."""

    def __init__(self, client: redis.Redis):
        self.client = client

    def reserve(self, budgets: list[Budget], tokens: int) -> tuple[float, float]:
        spacing = [value for b in budgets for value in (b.per_request, b.per_token)]
        start, now = self._script(RESERVE)(
            keys=[REDIS_PREFIX + b.name for b in budgets], args=[tokens, KEEP, *spacing]
        )
        return float(start), float(now)

    def spend(self, budgets: list[Budget], tokens: int) -> None:
        self._script(SPEND)(
            keys=[REDIS_PREFIX + b.name for b in budgets],
            args=[b.per_token * tokens for b in budgets],
        )

    def pause(self, name: str, seconds: float) -> None:
        self._script(PAUSE)(keys=[REDIS_PREFIX + name], args=[seconds, KEEP])

    def paused_for(self, name: str) -> float:
        now, _, paused = self.state(name)
        return max(0.0, paused - now)

    def state(self, name: str) -> tuple[float, float, float]:
        now, requests_at, tokens_at, paused = self._script(STATE)(keys=[REDIS_PREFIX + name])
        return float(now), max(float(requests_at), float(tokens_at)), float(paused)

    def forget_idle(self) -> int:
        return 0  # every key expires once its schedule has passed (KEEP)

    def _script(self, source: str):
        return _scripts(self.client, source)


@functools.cache
def _scripts(client: redis.Redis, source: str):
    # register_script sends the script's SHA (EVALSHA), loading it once if missing.
    return client.register_script(source)
