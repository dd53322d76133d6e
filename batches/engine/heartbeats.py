"""Worker heartbeats: every ``db_worker`` process keeps a :class:`batches.models.Worker`
row fresh from a thread of its own, idle or not, and removes it when it stops."""

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from batches.models import Worker, worker_threads

logger = logging.getLogger("batches.engine.worker")

# Rows of workers gone this long are removed by the next worker to start.
FORGET_AFTER = timedelta(days=1)


def beat_interval() -> float:
    """Often enough that a live worker never looks stale, rarely enough to cost nothing."""
    return max(0.05, min(5.0, settings.BATCH_STALE_AFTER / 4))


class Heartbeat:
    """Started by the db_worker command; ``stop()`` removes the row."""

    def __init__(self):
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:200]
        self.started_at = timezone.now()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="worker-heartbeat", daemon=True)

    def start(self) -> "Heartbeat":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        try:
            Worker.objects.filter(name=self.name).delete()
        except Exception:
            logger.warning("Could not remove worker %s's heartbeat row", self.name, exc_info=True)

    def run(self) -> None:
        forget_old_workers()
        while True:
            try:
                self.beat()
            except Exception:
                # The database may be away for a while: keep trying, on a fresh
                # connection each time.
                logger.warning("Worker heartbeat failed", exc_info=True)
                connection.close()
            if self.stopped.wait(beat_interval()):
                break
        connection.close()

    def beat(self) -> None:
        now, threads = timezone.now(), worker_threads()
        if not Worker.objects.filter(name=self.name).update(beat_at=now, threads=threads):
            Worker.objects.create(
                name=self.name,
                hostname=socket.gethostname()[:255],
                pid=os.getpid(),
                started_at=self.started_at,
                beat_at=now,
                threads=threads,
            )


def forget_old_workers() -> None:
    try:
        Worker.objects.filter(beat_at__lt=timezone.now() - FORGET_AFTER).delete()
    except Exception:
        logger.warning("Could not remove old worker rows", exc_info=True)
        connection.close()
