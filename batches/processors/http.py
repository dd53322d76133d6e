"""Processors that call a model service over HTTP: the shared client with rate limits,
timeouts and retries, and the ``http`` processor.

The URLs the network processors call come only from settings, never from the row or
the options, so an upload cannot make the server request an address of its choosing
(server-side request forgery). Transient failures (connection errors, timeouts, 429,
5xx) are retried with exponential backoff before the item fails; other 4xx answers
fail at once, as repeating them cannot help.

Every call first waits for its slot in the processor's lane (batches.processors.lanes:
the rate limits all workers share). A 429 with a Retry-After pauses the lane for every
worker that long, and the call is tried again after the pause without spending a retry.
"""

import json
import logging
import time

import httpx
import msgspec
from batchsvc_client.retry import parse_retry_after
from django.conf import settings

from batches.processors.base import FORM_OPTIONS, Processor, ProcessorError
from batches.processors.connections import Answer, Connections
from batches.processors.lanes import OPTIONS as RATE_OPTIONS
from batches.processors.lanes import Lane, check_options
from batchsvc.ops.outages import Backoff

logger = logging.getLogger("batches.processors")

# Too many requests, and any server error: a model API answers 529 when overloaded,
# proxies 520-527.
RETRY_STATUSES = frozenset({429, *range(500, 600)})
# A Retry-After longer than this is not waited for in full: the item would hold a
# worker slot for minutes. (A 429's pauses the whole lane instead: batches.processors.lanes.)
MAX_RETRY_AFTER = 30.0
# The longest wait between two tries of one call (the backoff doubles up to it).
MAX_BACKOFF = 30.0
# The most 429s with a Retry-After one call waits out (pausing its lane) before they
# count as failures like any other.
MAX_PAUSES = 20


class NetworkProcessor(Processor):
    """Shared by the network processors: kept-alive connections per processor
    (:class:`Connections`, reused across items and safe to share by threads), and
    ``_post`` with the lane's rate limits, timeouts and retries. Options
    ``requests_per_minute`` and ``tokens_per_minute`` lower the processor's limits
    (BATCH_RATE_LIMITS) for one batch."""

    # Options every network processor takes.
    accepts = {
        **FORM_OPTIONS,
        "requests_per_minute": "a whole number, at most the limit in BATCH_RATE_LIMITS",
        "tokens_per_minute": "a whole number, at most the limit in BATCH_RATE_LIMITS",
    }

    def __init__(self, options: dict, *, headers: dict | None = None):
        super().__init__(options)
        check_options(self.name, options)
        self.lane = Lane(self.name, options)
        self._http = Connections(
            settings.BATCH_PROCESSOR_TIMEOUT,
            {"Content-Type": "application/json", "User-Agent": "batchsvc", **(headers or {})},
        )

    def bind(self, *, batch_id, owner_id=None) -> None:
        self.lane = Lane(self.name, self.options, batch_id, owner_id)

    def close(self) -> None:
        self._http.close()

    def _post(self, url: str, payload: dict, *, tokens: int = 0) -> dict:
        """POST JSON in the lane's next slot (``tokens``: the call's estimate), retry
        transient failures, return the answer's JSON object."""
        return self._answer(self._exchange(url, payload, tokens=tokens))

    def _exchange(self, url: str, payload: dict, *, tokens: int = 0) -> Answer:
        """POST JSON in the lane's next slot, retrying transient failures: the last
        answer, a success or one the retries could not cure (ProcessorError when no
        answer came at all)."""
        attempts = 1 + settings.BATCH_PROCESSOR_RETRIES
        attempt = pauses = 0
        backoff = Backoff(first=settings.BATCH_PROCESSOR_BACKOFF_MS / 1000, cap=MAX_BACKOFF)
        while True:
            last = attempt == attempts - 1
            self.lane.acquire(tokens)
            self._sending()
            try:
                response = self._send(url, payload)
            except httpx.TransportError as exc:
                if last:
                    raise ProcessorError(f"{self.name} processor: {_describe(exc)}.") from None
                logger.warning("%s processor: %s; retrying", self.name, _describe(exc))
                _sleep(backoff)
                attempt += 1
                continue
            wait = parse_retry_after(response.headers.get("retry-after"))
            if response.status_code == 429 and wait is not None and pauses < MAX_PAUSES:
                logger.warning("%s processor: HTTP 429; lane paused %.1f s", self.name, wait)
                self.lane.pause(wait)
                pauses += 1
                continue
            if response.status_code in RETRY_STATUSES and not last:
                logger.warning("%s processor: HTTP %s; retrying", self.name, response.status_code)
                _sleep(backoff, response.headers.get("retry-after"))
                attempt += 1
                continue
            return response

    def _send(self, url: str, payload: dict) -> Answer:
        return self._http.post(url, msgspec.json.encode(payload))

    def _sending(self) -> None:
        """Called before each attempt, once its slot has come: a subclass raises
        ProcessorError here to send nothing more."""

    def _answer(self, response: Answer) -> dict:
        if not response.is_success:
            raise ProcessorError(
                f"{self.name} processor: HTTP {response.status_code} {response.reason_phrase}"
                f"{_excerpt(response)}."
            )
        try:
            body = response.json()
        except ValueError:
            raise ProcessorError(f"{self.name} processor: the answer is not JSON.") from None
        if not isinstance(body, dict):
            raise ProcessorError(f"{self.name} processor: the answer is not a JSON object.")
        return body


class HttpProcessor(NetworkProcessor):
    """POSTs {"input", "history", "options"} to settings.BATCH_HTTP_URL and stores the
    JSON object it answers, with "text" taken from it (or the whole answer as text)."""

    name = "http"
    # The service at BATCH_HTTP_URL, not this server, knows which options it takes.
    passes_on = True
    address_setting = "BATCH_HTTP_URL"

    def __init__(self, options: dict):
        super().__init__(options)
        self.url = settings.BATCH_HTTP_URL

    @classmethod
    def configuration_error(cls) -> str | None:
        if not settings.BATCH_HTTP_URL:
            return "The http processor is not configured (BATCH_HTTP_URL is empty)."
        return None

    def process(self, input: dict, history: list[dict]) -> dict:
        options = {key: value for key, value in self.options.items() if key not in RATE_OPTIONS}
        body = self._post(self.url, {"input": input, "history": history, "options": options})
        text = body.get("text")
        if not isinstance(text, str):
            text = json.dumps(body if text is None else text, ensure_ascii=False)
        return {**body, "text": text}


def _sleep(backoff: Backoff, retry_after: str | None = None) -> None:
    """The server's policy for the next try, lengthened to a Retry-After (up to
    MAX_RETRY_AFTER)."""
    delay = backoff.next()
    asked = parse_retry_after(retry_after)
    if asked is not None:
        delay = max(delay, min(asked, MAX_RETRY_AFTER))
    time.sleep(delay)


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "no answer within the timeout"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    return f"the connection failed ({type(exc).__name__})"


def _excerpt(response: Answer) -> str:
    text = " ".join(response.text.split())[:200]
    return f": {text}" if text else ""
