"""Sending deliveries: the worker's side of webhooks, run by a thread of ``db_worker``
(never by a request).

A worker claims the deliveries that are due by setting their ``claimed_until`` in a
short transaction (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so that workers on several
machines claim different rows; SQLite: the transaction is IMMEDIATE, so claims take
turns), sends them a few at a time outside any transaction, and records each
attempt. A claim lasts longer than an attempt may take; a worker that died lets its
claims go when they expire, and another worker sends them again, with the same
``webhook-id``, which is what a receiver deduplicates on.

A 2xx is delivered; a 410 disables the endpoint; anything else (another status, no
answer in WEBHOOKS_TIMEOUT seconds, a refused address) is tried again after a
capped exponential wait with jitter (batchsvc.ops.outages.Backoff) until
WEBHOOKS_RETRY_FOR has passed.
"""

import logging
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from batchsvc.ops.outages import (
    DATABASE_ERRORS,
    Backoff,
    close_connections,
    describe,
    log_outage,
    retry_while_unavailable,
)
from webhooks.addresses import RefusedUrl, target_for
from webhooks.models import RESPONSE_KEPT, Attempt, Delivery, DeliveryStatus
from webhooks.services import endpoint_disable
from webhooks.signing import body_of, signed_headers

logger = logging.getLogger("webhooks.delivery")

POLL = 0.5  # seconds between looks for due deliveries while none is being sent
CLAIM_MARGIN = 30  # seconds a claim outlasts the longest attempt


@dataclass
class Sent:
    """One attempt: the endpoint's answer, or why there was none."""

    started_at: datetime
    duration_ms: int
    status_code: int | None = None
    response: str = ""
    error: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def deliveries_claim(*, limit: int) -> list[Delivery]:
    """Up to ``limit`` due deliveries, now this worker's until their claim expires."""
    now = timezone.now()
    due = Delivery.objects.due(now=now).filter(endpoint__is_active=True)
    if not due.exists():  # a plain read first: an idle worker takes no (SQLite) write lock
        return []
    with transaction.atomic():
        due = due.select_related("event", "endpoint")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        claimed = list(due[:limit])
        if not claimed:
            return []
        until = now + timedelta(seconds=settings.WEBHOOKS_TIMEOUT + CLAIM_MARGIN)
        Delivery.objects.filter(pk__in=[d.pk for d in claimed]).update(claimed_until=until)
    for delivery in claimed:
        delivery.claimed_until = until
    return claimed


def delivery_attempt(delivery: Delivery, client: httpx.Client) -> Sent:
    """POST the event to the endpoint, signed with its secrets of the moment."""
    endpoint, event = delivery.endpoint, delivery.event
    started, clock = timezone.now(), time.monotonic()
    sent = Sent(started, 0)
    try:
        target = target_for(endpoint.url)
        body = body_of(event.payload)
        keys = endpoint.secrets(now=started)
        headers = signed_headers(webhook_id=event.webhook_id, body=body, keys=keys, at=started)
        sent.status_code, sent.response = _post(client, target, body, {**target.headers, **headers})
    except RefusedUrl as exc:
        sent.error = str(exc)
    except httpx.TimeoutException:
        sent.error = f"No answer within {settings.WEBHOOKS_TIMEOUT} s."
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        sent.error = describe(exc)
    except Exception as exc:  # a bug of ours: the attempt fails, the worker goes on
        logger.exception("Webhook delivery %s: the attempt failed", delivery.pk)
        sent.error = describe(exc)
    sent.duration_ms = round((time.monotonic() - clock) * 1000)
    return sent


def _post(client: httpx.Client, target, body: bytes, headers: dict) -> tuple[int, str]:
    """The status and the start of the body, all within WEBHOOKS_TIMEOUT seconds."""
    timeout = settings.WEBHOOKS_TIMEOUT
    deadline = time.monotonic() + timeout
    request = client.build_request(
        "POST",
        target.url,
        content=body,
        headers=headers,
        timeout=timeout,
        extensions=target.extensions,
    )
    response = client.send(request, stream=True)
    try:
        kept = bytearray()
        for chunk in response.iter_bytes():
            kept += chunk[: RESPONSE_KEPT * 4 - len(kept)]
            if len(kept) >= RESPONSE_KEPT * 4:
                break
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the answer took too long", request=request)
    finally:
        response.close()
    return response.status_code, kept.decode(errors="replace")[:RESPONSE_KEPT]


def delivery_record(delivery: Delivery, sent: Sent) -> None:
    """The attempt, and what follows from it: delivered, tried again later, given
    up, or the endpoint disabled (a 410). Nothing when the claim is no longer this
    worker's (its endpoint was deleted, say)."""
    now = timezone.now()
    with transaction.atomic():
        mine = Delivery.objects.filter(pk=delivery.pk, claimed_until=delivery.claimed_until)
        locked = mine.select_for_update().first()
        if locked is None:
            return
        number = locked.attempts + 1
        Attempt.objects.create(
            delivery=locked,
            number=number,
            started_at=sent.started_at,
            duration_ms=sent.duration_ms,
            status_code=sent.status_code,
            response=sent.response,
            error=sent.error[:500],
        )
        changes = dict(
            attempts=number,
            claimed_until=None,
            last_status_code=sent.status_code,
            last_error=(sent.error or _answered(sent))[:500],
        )
        changes.update(_next_step(locked, sent, now))
        Delivery.objects.filter(pk=locked.pk).update(**changes)
        if sent.status_code == 410:
            endpoint_disable(
                endpoint_id=locked.endpoint_id,
                reason=f"Answered 410 Gone on {now.isoformat(timespec='seconds')}.",
            )


def _answered(sent: Sent) -> str:
    return "" if sent.succeeded else f"Answered {sent.status_code}."


def _next_step(delivery: Delivery, sent: Sent, now: datetime) -> dict:
    if sent.succeeded:
        return {"status": DeliveryStatus.SUCCEEDED, "delivered_at": now, "next_attempt_at": None}
    if sent.status_code == 410:
        return {"status": DeliveryStatus.FAILED, "next_attempt_at": None}
    failures = delivery.failures + 1
    backoff = Backoff(first=settings.WEBHOOKS_BACKOFF_MS / 1000, cap=settings.WEBHOOKS_BACKOFF_MAX)
    next_at = now + timedelta(seconds=backoff.delay(failures))
    if next_at > delivery.retry_until:
        return {"status": DeliveryStatus.FAILED, "failures": failures, "next_attempt_at": None}
    return {"failures": failures, "next_attempt_at": next_at}


class Dispatcher:
    """Sends due deliveries ``threads`` at a time: it claims as many as it has free
    threads and records each attempt as it ends, so a slow endpoint holds one thread,
    not the others."""

    def __init__(self, threads: int):
        self.threads = max(1, threads)
        # No kept connections: an address may serve several endpoint host names.
        self.client = httpx.Client(
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="webhook")
        self.running: dict[Future, Delivery] = {}

    def step(self, stop: threading.Event) -> int:
        """Claim for the free threads, then record what ended; how many were claimed."""
        free = self.threads - len(self.running)
        claimed = deliveries_claim(limit=free) if free else []
        for delivery in claimed:
            self.running[self.pool.submit(delivery_attempt, delivery, self.client)] = delivery
        if self.running:
            more = claimed and len(self.running) < self.threads
            done, _ = wait(self.running, timeout=0 if more else POLL, return_when=FIRST_COMPLETED)
            for future in done:
                delivery, sent = self.running.pop(future), future.result()
                retry_while_unavailable(
                    partial(delivery_record, delivery, sent),
                    what=f"Webhook delivery {delivery.pk}",
                    stop=stop,
                )
        return len(claimed)

    def run(self, *, stop: threading.Event) -> None:
        backoff = Backoff()
        while not stop.is_set():
            try:
                claimed = self.step(stop)
            except DATABASE_ERRORS as exc:
                close_connections()
                delay = backoff.next()
                log_outage("Webhook deliveries", exc, delay, backoff)
                stop.wait(delay)
                continue
            except Exception:
                logger.exception("Webhook deliveries failed; going on")
                stop.wait(POLL)
                continue
            if not claimed and not self.running:
                stop.wait(POLL)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()


def deliver_forever(*, stop: threading.Event) -> None:
    """The worker's delivery thread: until ``stop`` is set."""
    dispatcher = Dispatcher(settings.WEBHOOKS_THREADS)
    try:
        dispatcher.run(stop=stop)
    finally:
        dispatcher.close()
        connection.close()
