"""Claiming a worker thread's next conversation, fairly, from all active batches.

Every claim looks at every active batch and tries them in this order:

1. owners with the fewest rows running first, then the one served longest ago
   (round-robin across owners: one user's twenty batches do not starve another
   user's one, whatever the number of threads);
2. then that owner's batches by priority, then fewest rows running, then oldest;
3. a batch whose ``concurrency`` (at most BATCH_CONCURRENCY_MAX) rows already run
   is passed over, and so is every batch of an owner with as many rows running as
   their quota allows (QUOTA_RUNNING_ITEMS, or their own).

In a batch, a thread claims a whole conversation by turning its head (see
batches.models) running under its own token: conversations not started yet first,
then those of dead workers. Claims lock the head row with SELECT ... FOR UPDATE SKIP
LOCKED on PostgreSQL, so workers never claim one conversation twice, and lock the
batch row while counting its running rows, so two workers never both take its last
free slot; on SQLite every write transaction is IMMEDIATE (settings), which
serialises claims.
"""

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from batches.engine import sql
from batches.engine.conversations import Claim, Item
from batches.engine.counters import Progress, stale_after, stopping
from batches.models import PRIORITY_RANK, Batch, Interaction, OwnerQuota, concurrency_cap
from batches.processors.base import processor_class
from batchsvc.ops.outages import retry_while_unavailable

logger = logging.getLogger("batches.processing")

# What a claim answers when every batch with work left is at its concurrency cap.
WAIT = "wait"
FULL = "full"


@dataclass(frozen=True)
class Drained:
    """A claim's answer: nothing is left to claim in the batch and none of its rows
    runs, so the run finishes it (and claims again)."""

    batch_id: object


@dataclass(frozen=True)
class Unchecked:
    """A claim's answer: the batch's processor has not been checked by this run; the
    run checks it, tells :meth:`Claims.checked`, and claims again."""

    candidate: "Candidate"


# How long a run's threads may share one fair order while their claims succeed.
ORDER_SECONDS = 0.05
# How long a run's threads pass over a batch in which a claim found nothing to start
# (its other conversations all run): idle threads look for work often, and would
# otherwise try it again at every look.
EXHAUSTED_SECONDS = 1.0


@dataclass
class Candidate:
    """An active batch as the scheduler sees it."""

    pk: object
    owner_id: int | None
    priority: str
    created_at: datetime
    concurrency: int | None
    status: str
    processor: str
    options: dict
    claimed_at: datetime | None = None
    running: int = 0
    # The owner's rows running, over all their batches, and the most their quota allows.
    owner_running: int = 0
    owner_cap: int | None = None

    @property
    def cap(self) -> int:
        return concurrency_cap(self.concurrency)

    @property
    def owner_full(self) -> bool:
        return self.owner_cap is not None and self.owner_running >= self.owner_cap


Decision = Claim | str | Drained | Unchecked | None


def fair_order() -> list[Candidate]:
    """The active batches in the order a thread tries them; see the module docstring."""
    fields = ("pk", "owner_id", "priority", "created_at", "concurrency", "status")
    more = ("processor", "options", "claimed_at")
    rows = Batch.objects.active().order_by("created_at").values_list(*fields, *more)
    candidates = [Candidate(*row) for row in rows]
    running = sql.running_counts() if candidates else {}
    by_owner = defaultdict(list)
    for candidate in candidates:
        candidate.running = running.get(candidate.pk, 0)
        by_owner[candidate.owner_id].append(candidate)
    caps = running_quotas(by_owner)
    for owner_id, batches in by_owner.items():
        owner_running = sum(b.running for b in batches)
        for candidate in batches:
            candidate.owner_running, candidate.owner_cap = owner_running, caps.get(owner_id)
    owners = sorted(by_owner.values(), key=_owner_turn)
    return [
        candidate
        for batches in owners
        for candidate in sorted(
            batches, key=lambda b: (PRIORITY_RANK.get(b.priority, 1), b.running, b.created_at)
        )
    ]


def running_quotas(owners) -> dict:
    """Owner -> the most rows of theirs that may run at once (absent: no limit)."""
    default = settings.QUOTA_RUNNING_ITEMS
    own = dict(
        OwnerQuota.objects.filter(
            owner_id__in=list(owners), running_items__isnull=False
        ).values_list("owner_id", "running_items")
    )
    caps = {owner: own.get(owner, default) for owner in owners}
    return {owner: cap for owner, cap in caps.items() if cap is not None}


def _owner_turn(batches: list[Candidate]) -> tuple:
    served = max((b.claimed_at for b in batches if b.claimed_at), default=None)
    return sum(b.running for b in batches), served is not None, served, batches[0].created_at


class Claims:
    """The claims of one worker run's threads."""

    def __init__(self, progress: Progress):
        self.progress = progress
        # Batch -> whether its processor can be used, as the run found (Unchecked).
        self.usable: dict[object, bool] = {}
        self.heads: dict[object, tuple[str, list]] = {}
        self.order: tuple[float, list[Candidate]] = (0.0, [])
        self.order_lock = threading.Lock()
        self.exhausted: dict[object, float] = {}

    def claim(self, token: str, *, passed=frozenset()) -> Decision:
        """A conversation now running as ``token``'s; WAIT; a batch to finish
        (Drained) or to check (Unchecked); or None: nothing to do. Batches in
        ``passed`` are not looked at."""
        return retry_while_unavailable(
            lambda: self.next(token, passed),
            what=f"Claim of thread {token}",
            stop=stopping,
            landed=lambda: self.taken(token),
        )

    def fair_order(self) -> list[Candidate]:
        """The fair order, shared by the run's threads for ORDER_SECONDS while their
        claims succeed: computing it for every claim slowed short items down.
        The concurrency caps are still counted afresh by every claim."""
        with self.order_lock:
            computed, order = self.order
            if time.monotonic() - computed > ORDER_SECONDS:
                order = fair_order()
                self.order = (time.monotonic(), order)
            return order

    def forget_order(self) -> None:
        with self.order_lock:
            self.order = (0.0, [])

    def checked(self, batch_id, usable: bool) -> None:
        self.usable[batch_id] = usable

    def next(self, token: str, passed=frozenset()) -> Decision:
        capped = False
        for candidate in self.fair_order():
            if candidate.pk in passed:
                continue
            if candidate.running >= candidate.cap or candidate.owner_full:
                capped = True
                continue
            if self.progress.running_in(candidate.pk) >= candidate.cap:
                # This run's own threads fill the batch: full without asking the
                # database, and the shared order is kept (idle threads look often).
                capped = True
                continue
            usable = self.usable.get(candidate.pk)
            if usable is None:
                return Unchecked(candidate)
            if not usable:
                continue
            if candidate.running and self.recently_exhausted(candidate.pk):
                continue  # (once none of its rows runs, a claim finishes it: drained)
            claim = self.take(candidate, token)
            if claim is None or claim is FULL:
                self.forget_order()
            if claim is FULL:
                capped = True
            elif claim is not None:
                return claim
            elif candidate.running == 0:
                return Drained(candidate.pk)
            else:
                self.exhausted[candidate.pk] = time.monotonic()
        return WAIT if capped else None

    def recently_exhausted(self, batch_id) -> bool:
        found_nothing = self.exhausted.get(batch_id)
        return found_nothing is not None and time.monotonic() - found_nothing < EXHAUSTED_SECONDS

    def take(self, candidate: Candidate, token: str) -> Claim | str | None:
        now = timezone.now()
        before = now - stale_after()
        with self.progress.writing, transaction.atomic(), connection.cursor() as cursor:
            if not self.below_cap(candidate, now=now, since=before):
                transaction.set_rollback(True)
                return FULL
            cursor.execute(*self.heads_sql(candidate.pk))
            head = cursor.fetchone()
            if head is None:
                stale = Interaction.objects.stale(before=before).filter(batch_id=candidate.pk)
                cursor.execute(*sql.claim_sql(stale, "interaction_running"))
                head = cursor.fetchone()
            if head is None:
                transaction.set_rollback(True)
                return None
            pk, _, _, status, _, _ = head
            # Stamped once the batch's lock is held, after any claim it waited for.
            stamp = connection.ops.adapt_datetimefield_value(timezone.now())
            cursor.execute(sql.sql(sql.START), [token, stamp, stamp, pk, status])
            claim = self.claimed(token, head, candidate)
        self.progress.hold(pk, candidate.pk)  # once committed: a failed claim holds nothing
        return claim

    def below_cap(self, candidate: Candidate, *, now, since) -> bool:
        """Whether another of the batch's conversations may start, and another of its
        owner's rows when their quota limits them. Stamping the batch first locks its
        row (and the owner's row, with a quota), so on PostgreSQL the counts cannot
        race another worker's claim (SQLite's IMMEDIATE transaction locks the whole
        database anyway)."""
        sql.stamp_claimed(candidate.pk, now)
        running = sql.running_counts(batch_id=candidate.pk, since=since)
        if running.get(candidate.pk, 0) >= candidate.cap:
            return False
        if candidate.owner_cap is None:
            return True
        return sql.owner_running(candidate.owner_id, since=since) < candidate.owner_cap

    def heads_sql(self, batch_id) -> tuple[str, list]:
        # Compiled once a batch: building this query with the ORM cost more than
        # running it.
        if batch_id not in self.heads:
            heads = Interaction.objects.heads(Batch(pk=batch_id))
            self.heads[batch_id] = sql.claim_sql(heads, "interaction_pending")
        return self.heads[batch_id]

    def taken(self, token: str) -> Claim | None:
        """The conversation this thread claimed if the claim was committed, although
        the database went away before answering: its head runs under our token."""
        with connection.cursor() as cursor:
            cursor.execute(sql.sql(sql.HELD), [token])
            head = cursor.fetchone()
            if head is None:
                return None
            batch = Batch.objects.filter(pk=head[6])
            pk, owner_id, processor, options = batch.values_list(
                "pk", "owner_id", "processor", "options"
            ).get()
            candidate = Candidate(pk, owner_id, "", timezone.now(), None, "", processor, options)
            claim = self.claimed(token, head[:6], candidate)
        self.progress.hold(claim.head.pk, claim.batch_id)
        return claim

    def claimed(self, token: str, head: tuple, candidate: Candidate) -> Claim:
        """The claim of a conversation whose ``head`` row now runs as ours."""
        pk, conversation, row_number, _, data, chat_id = head
        rest, history = [], []
        for other, number, values, output in self.others(
            conversation, row_number, chat_id, candidate
        ):
            if number > row_number:
                rest.append(Item(other, sql.from_json(values)))
            else:
                history.append({"input": sql.from_json(values), "output": sql.from_json(output)})
        return Claim(
            token=token,
            batch_id=candidate.pk,
            owner_id=candidate.owner_id,
            processor=candidate.processor,
            options=candidate.options,
            head=Item(pk, sql.from_json(data)),
            rest=rest,
            history=history,
        )

    def others(self, conversation: int, row_number: int, chat_id: str, candidate) -> list:
        """The conversation's other rows: none for a row without a chat_id, which is a
        conversation of its own (most rows of a real upload; one query saved each),
        unless its processor numbers rows in runs."""
        if not chat_id and not runs_of_rows(candidate.processor):
            return []
        batch_id = Batch._meta.pk.get_db_prep_value(candidate.pk, connection)
        with connection.cursor() as cursor:
            cursor.execute(
                sql.sql(sql.CONVERSATION),
                [batch_id, conversation, row_number, row_number],
            )
            return cursor.fetchall()


def runs_of_rows(processor: str) -> bool:
    found = processor_class(processor)
    return found is not None and found.runs_of_rows
