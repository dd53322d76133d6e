"""``db_worker`` from django-tasks-db, plus recovery of work left by dead workers.

Our batches app comes before django_tasks_db in INSTALLED_APPS, so this command is
what ``python manage.py db_worker`` runs. It adds two things django-tasks-db has no
hook for:

1. a thread that every ``--recover-every`` seconds calls
   :func:`batches.processing.batches_recover`: django-tasks-db leaves the task of a
   SIGKILLed worker RUNNING forever (django-tasks issue 46);
2. a graceful stop that does not wait for a whole batch: on SIGTERM/SIGINT the batch
   task ends its conversations after their current row and queues the batch again;
3. a heartbeat of the process itself (batches.heartbeats), idle or not, for /readyz
   and /metrics.
"""

import logging
import threading
import time

from django.conf import settings
from django.db import connection
from django_tasks_db.management.commands import db_worker as upstream

from batches.heartbeats import Heartbeat
from batches.processing import batches_recover, stopping

logger = logging.getLogger("batches.worker")


def default_recover_every() -> float:
    return max(0.5, min(60.0, settings.BATCH_STALE_AFTER / 4))


class Worker(upstream.Worker):
    def shutdown(self, signum, frame) -> None:
        stopping.set()
        super().shutdown(signum, frame)


class Command(upstream.Command):
    help = (
        "Run a database background worker (django-tasks-db) that also re-queues "
        "batches whose worker died."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--recover-every",
            type=upstream.valid_interval,
            default=None,
            help="seconds between looks for batches left by dead workers; 0 turns it off "
            "(default: BATCH_STALE_AFTER / 4, between 0.5 and 60)",
        )

    def handle(self, *args, recover_every=None, **options):
        every = default_recover_every() if recover_every is None else recover_every
        if every:
            threading.Thread(
                target=_recover_forever, args=(every,), name="batch-recovery", daemon=True
            ).start()
        # upstream.Command.handle builds its Worker by this module-level name; ours
        # only adds the stop flag to its signal handler.
        upstream.Worker = Worker
        heartbeat = Heartbeat().start()
        try:
            return super().handle(*args, **options)
        finally:
            heartbeat.stop()


def _recover_forever(every: float) -> None:
    while True:
        try:
            batches_recover()
        except Exception:
            logger.exception("Looking for lost batches failed")
        finally:
            connection.close()
        time.sleep(every)
