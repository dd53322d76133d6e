"""The HTTP core of the client: one httpx.Client, retries, JSON bodies (gzip when
large), and the error a refused request raises. The API's resources are methods of
:class:`batchsvc_client.client.Client`, built on :class:`HttpClient`."""

import datetime as dt
import gzip
import json
import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from itertools import islice
from typing import Any
from urllib.parse import quote

import httpx

from batchsvc_client.retry import parse_retry_after, retry_delay

logger = logging.getLogger("batchsvc_client")

# Answers that mean "not now": the server (or a gateway in front of it) cannot take
# requests at the moment. A gateway's 502 or 504 may come after the server acted,
# which is why only requests that are safe to repeat are retried.
UNAVAILABLE_STATUSES = frozenset({429, 502, 503, 504})
# Failures where the request never reached the server.
UNREACHABLE_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class ApiError(Exception):
    """The server refused a request: ``status``, its JSON ``body`` and ``headers``."""

    def __init__(self, status: int, body: Any, headers: Any = None):
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else {}
        super().__init__(f"HTTP {status}: {self.message}")

    @property
    def message(self) -> str:
        """The server's sentence (the body's ``error``), or what the body holds."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return str(error or self.body)


class HttpClient:
    """Requests to a batchsvc server with a token. Thread-safe: httpx.Client may be
    shared by threads.

    Requests that are safe to repeat (reads, and writes made idempotent by a key:
    a run's event_id, a log line's client_id, a trace file's path, a batch
    upload's Idempotency-Key) are retried:

    - while the server is unavailable (connection refused, 429, 502, 503, 504),
      for up to ``retry_deadline`` seconds from the first try, waiting as long as
      its Retry-After says, or else ``backoff`` seconds doubling up to
      ``max_backoff``;
    - after a failure that may be the request's own (a 500, a timeout, a broken
      connection), at most ``max_retries`` times within that deadline.

    ``json=`` bodies may hold UUIDs, datetimes and dates (sent as strings). Those
    larger than ``gzip_threshold`` bytes are sent gzip-compressed (Content-Encoding:
    gzip), by default those over 16 KiB; None never compresses them, for a server
    from before compressed bodies.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 30,
        *,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        retry_deadline: float = 120.0,
        gzip_threshold: int | None = 16 * 1024,
        transport: httpx.BaseTransport | None = None,
    ):
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.retry_deadline = retry_deadline
        self.gzip_threshold = gzip_threshold
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Token {token}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        retry: bool = True,
        retries: int | None = None,
        stream: bool = False,
        **kwargs,
    ) -> httpx.Response:
        """Send a request, retried as the class says when ``retry`` is true, with at
        most ``retries`` (default: ``max_retries``) retries after failures that may
        be the request's own. Returns the last answer, or raises the last error.
        With ``stream``, the answer's body is not read yet (close it)."""
        kwargs = self._compressed(kwargs)
        if not retry:
            return self._http.send(self._http.build_request(method, path, **kwargs), stream=stream)
        budget = _RetryBudget(
            retries=self.max_retries if retries is None else retries,
            deadline=self.retry_deadline,
            backoff=self.backoff,
            max_backoff=self.max_backoff,
        )
        while True:
            request = self._http.build_request(method, path, **kwargs)
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if (delay := budget.next_delay(exc)) is None:
                    raise
                logger.warning("%s %s failed (%s); retrying in %.1f s", method, path, exc, delay)
            else:
                if (delay := budget.next_delay(response)) is None:
                    return response
                response.close()
                logger.warning(
                    "%s %s answered %s; retrying in %.1f s",
                    method,
                    path,
                    response.status_code,
                    delay,
                )
            time.sleep(delay)

    def _compressed(self, kwargs: dict) -> dict:
        """The request's arguments with a JSON body encoded once here (compressed when
        larger than gzip_threshold), so that retries resend the same bytes."""
        if kwargs.get("json") is None:
            return kwargs
        kwargs = dict(kwargs)
        body = encode_json(kwargs.pop("json"))
        headers = {**(kwargs.pop("headers", None) or {}), "Content-Type": "application/json"}
        if self.gzip_threshold is not None and len(body) > self.gzip_threshold:
            body = gzip.compress(body, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        return {**kwargs, "content": body, "headers": headers}

    def json(self, method: str, path: str, *, ok=(200, 201), **kwargs) -> Any:
        response = self.request(method, path, **kwargs)
        body = _body(response)
        if response.status_code not in ok:
            raise ApiError(response.status_code, body, response.headers)
        return body


class _RetryBudget:
    """What is left of one request's retries, and how long to wait before the next."""

    def __init__(self, *, retries: int, deadline: float, backoff: float, max_backoff: float):
        self.retries = retries
        self.deadline = time.monotonic() + deadline
        self.backoff, self.max_backoff = backoff, max_backoff
        self.attempt = 0

    def next_delay(self, outcome: httpx.Response | Exception) -> float | None:
        """Seconds to wait before trying again after ``outcome``, or None to stop."""
        if not unavailable(outcome):
            failed = not isinstance(outcome, httpx.Response) or outcome.status_code == 500
            if not failed or self.retries <= 0:
                return None
            self.retries -= 1
        hint = retry_after(outcome.headers) if isinstance(outcome, httpx.Response) else None
        delay = retry_delay(self.attempt, hint, self.backoff, self.max_backoff)
        self.attempt += 1
        # A retry that could not start before the deadline is not made.
        return None if time.monotonic() + delay > self.deadline else delay


def unavailable(outcome: httpx.Response | Exception) -> bool:
    """Whether ``outcome`` means the server cannot take requests now, as opposed
    to a failure of this request (a 500, a timeout, a connection cut mid-way)."""
    if isinstance(outcome, httpx.Response):
        return outcome.status_code in UNAVAILABLE_STATUSES
    return isinstance(outcome, UNREACHABLE_ERRORS)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """The Retry-After of an answer's ``headers`` in seconds from now, or None."""
    return parse_retry_after(headers.get("Retry-After"))


def encode_json(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, as httpx encodes ``json=``, with UUIDs and
    datetimes as strings: the ids the client makes (new_event_id, uuid.uuid4()) and
    the times a caller holds go as they are."""
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_jsonable
    ).encode()


def _jsonable(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _run_path(run_id: str, tail: str) -> str:
    return f"/api/v1/runs/{quote(run_id, safe='')}/{tail}"


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"error": response.text[:500]}
