"""Waiting for a condition, bounded: never a fixed sleep before an assertion."""

import time

WAIT = 15  # seconds to wait for something that should happen much sooner


def wait_until(condition, timeout=60.0, poll=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {message}")
