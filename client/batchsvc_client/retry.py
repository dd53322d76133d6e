"""When to try a request again: the server's Retry-After, else backoff with jitter.

Pure functions on the standard library only, shared by the client and the server
(which reads the Retry-After of the services it calls).
"""

import datetime as dt
import email.utils
import random
import re

_DELAY_SECONDS = re.compile(r"[0-9]+")  # RFC 9110: delay-seconds = 1*DIGIT (ASCII only)


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """A Retry-After header value (RFC 9110, section 10.2.3) as seconds to wait from
    ``now``: delay-seconds, or an HTTP-date in any of its three formats (a date
    already past is 0). None when there is no value or it cannot be read; never
    negative."""
    value = (value or "").strip()
    if not value:
        return None
    if _DELAY_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # HTTP dates are in GMT (asctime has no zone)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def retry_delay(
    attempt: int,
    hint: float | None,
    backoff: float,
    max_backoff: float,
    *,
    jitter=random.random,
) -> float:
    """Seconds before retry number ``attempt`` (from 0): the server's ``hint`` when it
    gave one, else ``backoff`` doubling with each attempt up to ``max_backoff``. At
    least ``backoff``, so that a Retry-After of 0 does not make a busy loop. The
    jitter (up to a tenth more) only lengthens the wait, so that clients sent away
    together do not come back together, and never before the server asked."""
    base = max(hint, backoff) if hint is not None else min(max_backoff, backoff * 2**attempt)
    return base * (1 + jitter() / 10)
