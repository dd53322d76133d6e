import datetime as dt
import email.utils
import gzip
import json
import logging
import os
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

logger = logging.getLogger("batchsvc.client")

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
        message = body.get("error") if isinstance(body, dict) else None
        super().__init__(f"HTTP {status}: {message or body!r}")


class Client:
    """A batchsvc API client. Thread-safe: httpx.Client may be shared by threads.

    Requests that are safe to repeat (reads, and writes made idempotent by a key:
    a run's event_id, a log line's client_id, a trace file's path, a batch
    upload's Idempotency-Key) are retried:

    - while the server is unavailable (connection refused, 429, 502, 503, 504),
      for up to ``retry_deadline`` seconds from the first try, waiting as long as
      its Retry-After says, or else ``backoff`` seconds doubling up to
      ``max_backoff``;
    - after a failure that may be the request's own (a 500, a timeout, a broken
      connection), at most ``max_retries`` times within that deadline.

    JSON bodies larger than ``gzip_threshold`` bytes are sent gzip-compressed
    (Content-Encoding: gzip), by default those over 16 KiB; None never compresses
    them, for a server from before compressed bodies.
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
        """The request's arguments with a JSON body larger than gzip_threshold
        encoded once here and compressed, so that retries resend the same bytes."""
        if self.gzip_threshold is None or kwargs.get("json") is None:
            return kwargs
        kwargs = dict(kwargs)
        # Encoded as httpx encodes json=, so compressing changes nothing else.
        body = json.dumps(
            kwargs.pop("json"), ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
        headers = {**(kwargs.pop("headers", None) or {}), "Content-Type": "application/json"}
        if len(body) > self.gzip_threshold:
            body = gzip.compress(body, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        return {**kwargs, "content": body, "headers": headers}

    def json(self, method: str, path: str, *, ok=(200, 201), **kwargs) -> Any:
        response = self.request(method, path, **kwargs)
        body = _body(response)
        if response.status_code not in ok:
            raise ApiError(response.status_code, body, response.headers)
        return body

    # Runs ---------------------------------------------------------------

    def upload_runs(
        self, runs: Iterable[dict], transactional: bool = False, chunk_size: int = 1000
    ) -> dict[str, Any]:
        """Upload runs in chunks of ``chunk_size``; return the summed outcome.

        Every run carries its event_id, so a chunk retried after a lost answer is
        stored once (its runs come back ``existing``). With ``transactional``, each
        chunk is all-or-nothing; a refused chunk is counted in ``rolled_back_chunks``
        and its failures are listed in ``errors``. Indexes are positions in ``runs``.
        """
        path = "/api/v1/runs/batch-transactional" if transactional else "/api/v1/runs/batch"
        summary = {"total": 0, "created": 0, "existing": 0, "failed": 0, "errors": []}
        summary["rolled_back_chunks"] = 0
        for chunk in _chunks(runs, chunk_size):
            ok = (200, 201, 400) if transactional else (200, 201)
            body = self.json("POST", path, json={"runs": chunk}, ok=ok)
            if "total" not in body:  # a 400 about the request itself, not its runs
                raise ApiError(400, body)
            offset = summary["total"]
            # A rolled-back chunk stored nothing, whatever its items would have been.
            counted = (
                ("total", "failed")
                if body.get("rolled_back")
                else summary.keys() - {"errors", "rolled_back_chunks"}
            )
            for name in counted:
                summary[name] += body[name]
            summary["errors"] += [{**e, "index": offset + e["index"]} for e in body["errors"]]
            summary["rolled_back_chunks"] += bool(body.get("rolled_back"))
        return summary

    # Batches ------------------------------------------------------------

    def upload_batch(
        self,
        path: str | os.PathLike,
        *,
        name: str = "",
        processor: str = "echo",
        options: dict | None = None,
        idempotency_key: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Upload a .csv or .xlsx file as a batch: ``{"batch_id", "status",
        "total_items", "skipped_count", "skipped_rows"}`` (or the file's summary with
        ``dry_run``).

        The upload carries an Idempotency-Key (a new one unless given), so a retry
        after a lost answer gets the same batch, never a second one.
        """
        path = Path(path)
        data = {"processor": processor, "name": name or path.name}
        if options is not None:
            data["options"] = json.dumps(options)
        headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        return self.json(
            "POST",
            "/api/v1/batches/",
            ok=(200, 202),
            params={"dry_run": "true"} if dry_run else None,
            data=data,
            files={"file": (path.name, path.read_bytes())},
            headers=headers,
        )

    def batch(self, batch_id: str) -> dict[str, Any]:
        """The batch's fields: its status, ``progress`` (0-100, the items that ran) and
        ``ended_progress`` (0-100, the cancelled ones too)."""
        return self.json("GET", f"/api/v1/batches/{batch_id}/")

    def wait_for_batch(
        self,
        batch_id: str,
        *,
        poll: float = 1.0,
        timeout: float | None = None,
        progress: Callable[[dict], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the batch has ended; return it. ``progress(batch)`` is called
        after each look; TimeoutError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            batch = self.batch(batch_id)
            if progress is not None:
                progress(batch)
            if batch["status"] not in ("queued", "processing"):
                return batch
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"batch {batch_id} is still {batch['status']}")
            time.sleep(poll)

    def download_results(
        self, batch_id: str, path: str | os.PathLike, *, format: str = "csv"
    ) -> Path:
        """Stream the results file (csv, xlsx or json) to ``path``, written to a
        temporary file beside it and renamed, so ``path`` is never half-written."""
        target = Path(path)
        url = f"/api/v1/batches/{batch_id}/results"
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
        response = self.request("GET", url, params={"format": format}, stream=True)
        try:
            if response.status_code != 200:
                response.read()
                raise ApiError(response.status_code, _body(response))
            with open(temporary, "wb") as out:
                for chunk in response.iter_bytes():
                    out.write(chunk)
            os.replace(temporary, target)
        finally:
            response.close()
            temporary.unlink(missing_ok=True)
        return target

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        return self.json("POST", f"/api/v1/batches/{batch_id}/cancel", retry=False)

    def retry_failed(self, batch_id: str) -> dict[str, Any]:
        return self.json("POST", f"/api/v1/batches/{batch_id}/retry-failed", ok=(202,), retry=False)

    # Setup logs ---------------------------------------------------------

    def append_log_lines(
        self, run_id: str, lines: list[dict], *, dropped: int = 0, retry: bool = True
    ) -> dict[str, Any]:
        """Append lines to a run in one request; return ``{"logs_added", "duplicates",
        "skipped"}``. A line with a client_id is stored once however often it is sent.
        ``dropped`` reports lines the caller lost; the server records it on the run."""
        body: dict[str, Any] = {"logs": lines}
        if dropped:
            body["dropped"] = dropped
        return self.json("POST", _run_path(run_id, "setup_logs"), json=body, retry=retry)

    def append_log_line(self, run_id: str, line: dict, *, retry: bool = True) -> dict[str, Any]:
        """Append one line; return it as stored (with its seq)."""
        return self.json("POST", _run_path(run_id, "setup_log"), json=line, retry=retry)

    def log_lines(self, run_id: str, *, after: int = 0, **filters) -> Iterator[dict]:
        """A run's lines after seq ``after``, in order, fetched page by page.
        ``filters``: level, min_level, tail, page_size (see the API docs)."""
        params: dict[str, Any] = {"after": after, **filters}
        url: str | None = _run_path(run_id, "setup_logs")
        while url:
            page = self.json("GET", url, params=params)
            yield from page["results"]
            url, params = page["next"], None  # the next link carries the query


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
    """A Retry-After header in seconds from now (it may be a number or an HTTP
    date), or None when there is none or it cannot be read."""
    value = (headers.get("Retry-After") or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # HTTP dates are in GMT
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def retry_delay(attempt: int, hint: float | None, backoff: float, max_backoff: float) -> float:
    """Seconds before retry number ``attempt`` (from 0): the server's hint when it
    gave one, else exponential backoff capped at ``max_backoff``. The jitter only
    lengthens the wait, so that clients sent away together do not return together."""
    # At least ``backoff``, so that a Retry-After of 0 does not make a busy loop.
    base = max(hint, backoff) if hint is not None else min(max_backoff, backoff * 2**attempt)
    return base * (1 + random.random() / 10)


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
