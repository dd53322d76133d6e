"""What the LogBatcher tests read back: a run's stored lines, and a bounded wait."""

import time

from setuplogs.models import LogEntry

WAIT = 15  # seconds to wait for something that should happen much sooner


def messages(run_id) -> list[str]:
    return list(LogEntry.objects.filter(run__run_id=run_id).values_list("message", flat=True))


def wait_for(condition, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
