"""Running a claimed conversation: its rows in order, each with the conversation's
earlier exchanges as history.

Ending one row and starting the next is one transaction with conditional UPDATEs:
a row starts only while it is still pending (a cancel turned it ``cancelled``: the
conversation stops before the row starts) and ends only while its thread still owns
it (a worker whose heartbeat went stale and whose conversation was taken over
records nothing). So a row that has ended is never run again. An end whose commit
landed before the connection broke is recognised by its claim token, not done twice.
"""

import logging
import time
from dataclasses import dataclass

import msgspec
from django.db import connection
from django.utils import timezone

from batches.engine import sql
from batches.engine.counters import Progress, stopping
from batches.failures import group_key
from batches.models import Interaction, InteractionStatus
from batches.processors.base import USAGE_FIELDS, Processor, ProcessorError, usage_of
from batches.processors.lanes import Interrupted
from batchsvc.ops import metrics
from batchsvc.ops.outages import DATABASE_ERRORS, retry_while_unavailable

logger = logging.getLogger("batches.processing")


@dataclass
class Item:
    pk: int
    input: dict


@dataclass
class Claim:
    """A conversation a thread holds: its running head, the rows after it, its past."""

    token: str
    batch_id: object
    owner_id: int | None
    processor: str
    options: dict
    head: Item
    rest: list[Item]
    history: list[dict]


class Conversation:
    """One claimed conversation, run by the thread that claimed it."""

    def __init__(self, claim: Claim, progress: Progress):
        self.claim = claim
        self.progress = progress

    def run(self, processor: Processor) -> None:
        """Run the claimed rows in order until the last, a cancel, or a takeover."""
        item, claim = self.claim.head, self.claim
        processor.bind(batch_id=claim.batch_id, owner_id=claim.owner_id)
        try:
            while item is not None:
                started = time.perf_counter()
                try:
                    output, error = call(processor, item.input, claim.history)
                except Interrupted:
                    self.put_back(item)
                    return
                seconds = time.perf_counter() - started
                following = claim.rest.pop(0) if claim.rest and not stopping.is_set() else None
                recorded, started = self.store(item, output, error, following)
                self.progress.release(item.pk)
                if not recorded:
                    return
                self.progress.add(claim.batch_id, ok=not error)
                metrics.observe_batch_item(processor=claim.processor, ok=not error, seconds=seconds)
                if not error:
                    claim.history.append({"input": item.input, "output": output})
                self.progress.flush()
                item = following if started else None
        finally:
            self.progress.release(item.pk if item else -1)

    def put_back(self, item: Item) -> None:
        """The worker stopped before the item's call: pending again, for the next one."""
        try:
            with self.progress.writing, connection.cursor() as cursor:
                cursor.execute(sql.sql(sql.PUT_BACK), [item.pk, self.claim.token])
        except DATABASE_ERRORS:
            pass  # the database is away too: recovery takes the row

    def store(self, item: Item, output, error: str, following: Item | None):
        try:
            output, error = storable(output, error)
            return self.end_and_start(item, output, error, following)
        except DATABASE_ERRORS:
            raise  # stopping while the database is away: recovery takes the row
        except Exception as exc:
            # The outcome cannot be stored (an answer the database refuses): the item
            # fails with why, and the conversation goes on rather than leave the row
            # running with no thread behind it.
            logger.exception("Batch %s: item %s not stored", self.claim.batch_id, item.pk)
            return self.end_and_start(item, None, _not_stored(exc), following)

    def end_and_start(self, item: Item, output, error: str, following: Item | None):
        """Record ``item``'s outcome and start ``following``, in one transaction:
        ``(recorded, started)``. Through a database outage, until it gets through."""
        now = timezone.now()
        return retry_while_unavailable(
            lambda: self.record(item, output, error, following, now),
            what=f"Batch {self.claim.batch_id}: thread {self.claim.token}",
            stop=stopping,
            landed=lambda: self.recorded(item, following),
        )

    def record(self, item: Item, output, error: str, following: Item | None, now):
        """One try of end_and_start."""
        token = self.claim.token
        now = connection.ops.adapt_datetimefield_value(now)
        outcome = InteractionStatus.FAILED if error else InteractionStatus.SUCCEEDED
        usage = usage_of(output) or dict.fromkeys(USAGE_FIELDS)
        output = sql.to_json(output)
        ended = [outcome, output, error, group_key(error), now, *usage.values()]
        ended += [item.pk, token, "running"]
        start = None if following is None else [token, now, now, following.pk, "pending"]
        with self.progress.ending() as cursor:
            recorded, started = sql.end_and_start(cursor, ended, start)
        if started:
            self.progress.hold(following.pk, self.claim.batch_id)  # once committed
        return recorded, started

    def recorded(self, item: Item, following: Item | None):
        """``(True, started)`` if ``item``'s end was committed although the database
        went away before answering; None if it was not (or not by us: taken over)."""
        from_db = _states([item.pk] if following is None else [item.pk, following.pk])
        status, owner = from_db.get(item.pk, (None, None))
        if owner != self.claim.token or status == InteractionStatus.RUNNING:
            return None
        started = following is not None and from_db[following.pk] == (
            InteractionStatus.RUNNING,
            self.claim.token,
        )
        if started:
            self.progress.hold(following.pk, self.claim.batch_id)
        return True, started


def _states(pks: list[int]) -> dict[int, tuple[str, str]]:
    rows = Interaction.objects.filter(pk__in=pks).values_list("pk", "status", "claimed_by")
    return {pk: (status, owner) for pk, status, owner in rows}


def call(processor: Processor, input: dict, history: list[dict]) -> tuple[dict | None, str]:
    """``(output, "")`` or ``(None, error)``: one item's failure never stops the batch."""
    try:
        output = processor.process(input, history)
    except Interrupted:
        raise
    except ProcessorError as exc:
        return None, str(exc) or "The processor failed."
    except Exception as exc:
        logger.exception("Processor %s failed unexpectedly", type(processor).__name__)
        return None, f"The processor failed unexpectedly ({type(exc).__name__})."
    if not isinstance(output, dict) or not isinstance(output.get("text"), str):
        return None, "The processor answered without a text."
    return output, ""


def storable(output: dict | None, error: str) -> tuple[dict | None, str]:
    """The outcome without NUL characters, which PostgreSQL stores neither in text nor
    in JSON (as \\u0000), so that a model answering one does not fail its item."""
    error = error.replace("\x00", "")
    if output is not None and b"\\u0000" in msgspec.json.encode(output, enc_hook=str):
        output = _without_nul(output)
    return output, error


def _without_nul(value):
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_nul(item) for item in value]
    return value


def _not_stored(exc: Exception) -> str:
    detail = " ".join(str(exc).split())[:200].replace("\x00", "")
    return (
        f"The processor's answer could not be stored ({type(exc).__name__}"
        f"{': ' + detail if detail else ''}), so the item failed."
    )
