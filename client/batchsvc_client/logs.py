"""Send a run's log lines in batches: :class:`LogBatcher` (and
:class:`~batchsvc_client.handler.BatchsvcLogHandler` to feed it from ``logging``).

    with Client(url, token) as client, LogBatcher(client, run_id) as logs:
        logs.add("info", "cloning the repository")

Lines are buffered and sent by a background thread, ``max_batch_size`` lines per
request: as soon as that many are buffered, and at the latest ``flush_interval``
seconds after a line was added. Adding a line never waits for the network.
"""

import atexit
import datetime as dt
import itertools
import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import httpx

from batchsvc_client._http import ApiError, retry_after
from batchsvc_client.client import Client
from batchsvc_client.retry import retry_delay

logger = logging.getLogger("batchsvc_client.logs")

LEVELS = ("debug", "info", "warning", "error", "critical")
_ALIASES = {**{level: level for level in LEVELS}, "warn": "warning", "fatal": "critical"}
STATS = (
    "lines_sent",
    "batches_sent",
    "individual_sends",
    "flushes_by_size",
    "flushes_by_timer",
    "fallbacks",
    "dropped",
    "rejected",
)
# Answers that say "not now" rather than "not this": the lines stay buffered.
_TRY_LATER = frozenset({401, 403, 404, 408, 425, 429, 500, 502, 503, 504})
# A line the server has answered 500 for this many times may be given up, so that
# it cannot hold back every line behind it; but only once the server has shown
# that it works by storing the notice of its loss.
_MAX_LINE_ERRORS = 5


@dataclass(slots=True)
class _Line:
    payload: dict[str, Any]
    added: float  # time.monotonic() when add() was called


class _TryLater(Exception):
    """The server cannot take lines now; ``retry_after`` seconds is its hint."""

    def __init__(self, reason: str, retry_after: float | None = None, cause=None):
        super().__init__(reason)
        self.retry_after = retry_after
        self.cause = cause


class LogBatcher:
    """Buffers a run's log lines and sends them in batches from a background thread.

    - Every line gets a client_id, so a batch retried after a lost answer is stored
      once.
    - When the batch endpoint fails, the batch goes out one line at a time; after a
      404 from it (a server without it) it is not tried again.
    - While the server is unavailable (connection errors, timeouts, 429, 502, 503,
      504, or 500s for every line), lines stay buffered, however long it lasts, and
      go out on a later flush, paced by the server's Retry-After or else by the
      client's backoff. Past ``max_buffer`` lines the oldest are dropped and
      counted; the next batch sent tells the server how many, which records it on
      the run.
    - A line the server keeps failing (500) while it stores other lines is dropped,
      counted, and a warning line stored in its place says so.

    Thread-safe. ``close()`` (or leaving the ``with`` block) sends what is left.
    """

    def __init__(
        self,
        client: Client,
        run_id: str,
        max_batch_size: int = 10,
        flush_interval: float = 2.0,
        use_batch_endpoint: bool = True,
        max_buffer: int = 10_000,
    ):
        if max_batch_size < 1 or max_buffer < 1 or flush_interval <= 0:
            raise ValueError("max_batch_size, max_buffer and flush_interval must be positive")
        self.client = client
        self.run_id = run_id
        self.max_batch_size = max_batch_size
        self.flush_interval = flush_interval
        self.use_batch_endpoint = use_batch_endpoint
        self.max_buffer = max_buffer

        self._lock = threading.Lock()  # guards everything below
        self._changed = threading.Condition(self._lock)
        self._buffer: deque[_Line] = deque()
        self._unreported_drops = 0  # dropped lines the server has not been told about
        self._stats = dict.fromkeys(STATS, 0)
        self._closed = False
        self._failures = 0
        self._line_errors: dict[str, int] = {}  # client_id -> 500s in a row, one by one
        self._retry_at = 0.0
        self._last_failure: Exception | None = None
        # One sender at a time, so lines reach the server in the order they were added.
        self._sending = threading.Lock()
        self._ids = itertools.count(1)
        self._id_prefix = uuid.uuid4().hex[:20]
        self._thread = threading.Thread(target=self._run, name=f"LogBatcher({run_id})", daemon=True)
        self._thread.start()
        # Lines still buffered when the interpreter exits go out then (close()
        # undoes this, so a closed batcher is not kept alive by it).
        atexit.register(self.close)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    @property
    def stats(self) -> dict[str, int]:
        """Counters since creation (a copy): lines_sent, batches_sent,
        individual_sends, flushes_by_size, flushes_by_timer, fallbacks, dropped
        (lines lost: buffer overflow, a line the server keeps failing, lines still
        unsent when close() gave up), rejected (lines the server refused as
        invalid)."""
        with self._lock:
            return dict(self._stats)

    @property
    def last_failure(self) -> Exception | None:
        """Why the last send failed (an httpx error or an ApiError), while lines wait
        to be sent again; None once a send has succeeded."""
        with self._lock:
            return self._last_failure

    @property
    def buffered(self) -> int:
        with self._lock:
            return len(self._buffer)

    # Adding -------------------------------------------------------------

    def add(self, level: str, message: str, *, timestamp: float | None = None) -> None:
        """Buffer one line. ``level``: debug, info, warning (or warn), error, critical;
        ``timestamp``: seconds since the epoch (default: now)."""
        stored_level = _ALIASES.get(str(level).lower())
        if stored_level is None:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
        when = time.time() if timestamp is None else timestamp
        payload = {
            "timestamp": dt.datetime.fromtimestamp(when, dt.UTC).isoformat(),
            "level": stored_level,
            # Lone surrogates (file names read with surrogateescape) cannot be
            # sent as UTF-8: keep them visible as \udcxx rather than fail the batch.
            "message": str(message).encode("utf-8", "backslashreplace").decode("utf-8"),
            "client_id": f"{self._id_prefix}-{next(self._ids)}",
        }
        with self._lock:
            if self._closed:
                raise RuntimeError("this LogBatcher is closed")
            self._buffer.append(_Line(payload, time.monotonic()))
            self._drop_overflow()
            # Wake the sender for a full batch, or to start the timer of a first line.
            if len(self._buffer) in (1, self.max_batch_size):
                self._changed.notify()

    def _drop_overflow(self) -> None:
        overflow = len(self._buffer) - self.max_buffer
        if overflow <= 0:
            return
        for _ in range(overflow):
            self._buffer.popleft()
        if not self._unreported_drops:
            logger.warning("log buffer of run %s is full: dropping the oldest lines", self.run_id)
        self._unreported_drops += overflow
        self._stats["dropped"] += overflow

    # Flushing -----------------------------------------------------------

    def flush(self) -> bool:
        """Send every buffered line now; return whether all of them went out."""
        return self._flush(everything=True)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the timer and send what is left, trying for up to ``timeout``
        seconds if the server is unreachable. Lines still unsent then are counted
        as dropped. Calling it again does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._changed.notify()
        atexit.unregister(self.close)
        self._thread.join()
        deadline = time.monotonic() + timeout
        while not self.flush() and time.monotonic() < deadline:
            with self._lock:
                pause = max(0.0, min(self._retry_at, deadline) - time.monotonic())
            time.sleep(pause)
        with self._lock:
            lost = len(self._buffer)
            self._buffer.clear()
            self._stats["dropped"] += lost
        if lost:
            logger.error("%d log lines of run %s could not be sent", lost, self.run_id)

    def _run(self) -> None:
        """The sender thread: wait until a batch is due, send it, repeat."""
        while True:
            with self._lock:
                reason = self._due()
                while reason is None and not self._closed:
                    self._changed.wait(self._wait_time())
                    reason = self._due()
                if self._closed:
                    return
            self._flush(reason=reason)

    def _due(self) -> str | None:
        """Why a batch should go now ("size" or "timer"), or None."""
        if not self._buffer or time.monotonic() < self._retry_at:
            return None
        if len(self._buffer) >= self.max_batch_size:
            return "size"
        if time.monotonic() >= self._buffer[0].added + self.flush_interval:
            return "timer"
        return None

    def _wait_time(self) -> float | None:
        if not self._buffer:
            return None  # until add() or close() wakes us
        deadline = self._retry_at  # a full batch goes as soon as sending may resume
        if len(self._buffer) < self.max_batch_size:
            deadline = max(deadline, self._buffer[0].added + self.flush_interval)
        return max(0.0, deadline - time.monotonic())

    def _flush(self, *, everything: bool = False, reason: str | None = None) -> bool:
        """Send batches while one is due (every buffered line with ``everything``).
        Return whether the buffer was emptied."""
        with self._sending:
            if reason:
                self._count(f"flushes_by_{reason}")
            while True:
                with self._lock:
                    if not self._buffer:
                        return True
                    if not everything and self._due() is None:
                        return False
                    count = min(self.max_batch_size, len(self._buffer))
                    batch = [self._buffer.popleft() for _ in range(count)]
                    drops = self._unreported_drops
                try:
                    self._send(batch, drops)
                except _TryLater as exc:
                    self._back_off(exc)
                    return False
                except Exception as exc:
                    # A bug or an answer we do not understand: keep the lines (sending
                    # them again is safe, their client_ids make it idempotent) and
                    # keep the sender thread alive.
                    logger.exception("sending log lines of run %s failed", self.run_id)
                    self._requeue(batch)
                    self._back_off(_TryLater(repr(exc)))
                    return False
                self._recovered()

    def _back_off(self, exc: _TryLater) -> None:
        with self._lock:
            self._failures += 1
            self._last_failure = exc.cause or exc
            client = self.client
            delay = retry_delay(
                self._failures - 1, exc.retry_after, client.backoff, client.max_backoff
            )
            self._retry_at = time.monotonic() + delay
            failures = self._failures
        if failures == 1:
            logger.warning(
                "log lines of run %s not sent (%s); they stay buffered", self.run_id, exc
            )

    def _recovered(self) -> None:
        with self._lock:
            failures, self._failures, self._retry_at = self._failures, 0, 0.0
            self._last_failure = None
        if failures:
            logger.warning("log lines of run %s are being sent again", self.run_id)

    def _requeue(self, lines: list[_Line]) -> None:
        """Put unsent lines back at the front, oldest first."""
        with self._lock:
            self._buffer.extendleft(reversed(lines))
            self._drop_overflow()

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._stats[name] += n

    # Sending ------------------------------------------------------------

    def _send(self, batch: list[_Line], drops: int) -> None:
        """Deliver ``batch``, or put back what was not delivered and raise _TryLater."""
        if self.use_batch_endpoint:
            try:
                answer = self.client.append_log_lines(
                    self.run_id, [line.payload for line in batch], dropped=drops, retry=False
                )
            except (httpx.TransportError, ApiError) as exc:
                if not self._batch_failed(exc):
                    self._requeue(batch)
                    raise _as_try_later(exc) from None
            else:
                skipped_lines = answer.get("skipped") or []
                with self._lock:
                    self._unreported_drops -= drops
                    self._stats["batches_sent"] += 1
                    self._stats["lines_sent"] += len(batch) - len(skipped_lines)
                    self._stats["rejected"] += len(skipped_lines)
                for skipped in skipped_lines:
                    logger.warning("log line refused by the server: %s", skipped["error"])
                return
        self._send_one_by_one(batch, drops)

    def _batch_failed(self, exc: Exception) -> bool:
        """Whether a failed batch should go out one line at a time: not when the
        server is unreachable, busy or does not know the run (the lines wait), but
        when the batch endpoint is missing or refused this batch."""
        if not isinstance(exc, ApiError):
            return False
        if exc.status == 404 and not _names_the_run(exc):
            logger.warning("the server has no batch log endpoint; sending lines one by one")
            self.use_batch_endpoint = False
        elif exc.status in _TRY_LATER and exc.status != 500:
            return False
        self._count("fallbacks")
        return True

    def _send_one_by_one(self, batch: list[_Line], drops: int) -> None:
        if drops:
            notice = {
                "level": "warning",
                "message": f"client dropped {drops} lines",
                # Derived from the batch's first line: a retried notice is stored once.
                "client_id": f"{batch[0].payload['client_id']}-dropped",
            }
            self._send_line(notice, batch, counted=False)
            with self._lock:
                self._unreported_drops -= drops
        for position, line in enumerate(batch):
            outcome = self._send_line(line.payload, batch[position:])
            if outcome == "failing":
                self._give_up(line, batch[position:])
            elif outcome == "stored":
                with self._lock:
                    self._stats["lines_sent"] += 1
                    self._stats["individual_sends"] += 1

    def _send_line(self, payload: dict, unsent: list[_Line], *, counted: bool = True) -> str:
        """Send one line: "stored", "rejected" (refused as invalid), or "failing"
        (a 500, the line's _MAX_LINE_ERRORS-th when ``counted``). Otherwise put
        ``unsent`` back and raise _TryLater."""
        client_id = payload["client_id"]
        try:
            self.client.append_log_line(self.run_id, payload, retry=False)
        except (httpx.TransportError, ApiError) as exc:
            status = exc.status if isinstance(exc, ApiError) else None
            if status is not None and status not in _TRY_LATER:
                logger.warning("log line refused by the server: %s", exc)
                self._line_errors.pop(client_id, None)
                self._count("rejected")
                return "rejected"
            if status == 500 and counted and self._failed_again(client_id):
                return "failing"
            self._requeue(unsent)
            raise _as_try_later(exc) from None
        self._line_errors.pop(client_id, None)
        return "stored"

    def _failed_again(self, client_id: str) -> bool:
        errors = self._line_errors.get(client_id, 0) + 1
        self._line_errors[client_id] = errors
        return errors >= _MAX_LINE_ERRORS

    def _give_up(self, line: _Line, unsent: list[_Line]) -> None:
        """Store a warning in place of ``line``, and drop the line once it is
        stored. A server that fails the warning too is failing everything, not
        this line: then the lines wait (_send_line raises _TryLater)."""
        client_id = line.payload["client_id"]
        errors = self._line_errors[client_id]
        notice = {
            "level": "warning",
            "message": f"client dropped a line the server failed to store {errors} times",
            "client_id": f"{client_id}-given-up",
        }
        self._send_line(notice, unsent, counted=False)
        del self._line_errors[client_id]
        self._count("dropped")
        logger.error(
            "log line of run %s dropped: the server failed to store it %d times",
            self.run_id,
            errors,
        )


def _names_the_run(exc: ApiError) -> bool:
    """batchsvc's 404 for an unknown run names it in details; a server without
    the endpoint answers a bare 404."""
    details = exc.body.get("details") if isinstance(exc.body, dict) else None
    return isinstance(details, dict) and "run_id" in details


def _as_try_later(exc: Exception) -> _TryLater:
    hint = retry_after(exc.headers) if isinstance(exc, ApiError) else None
    return _TryLater(str(exc) or type(exc).__name__, hint, exc)
