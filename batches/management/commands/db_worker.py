"""``db_worker`` from django-tasks-db, plus recovery of work left by dead workers.

Our batches app comes before django_tasks_db in INSTALLED_APPS, so this command is
what ``python manage.py db_worker`` runs. It starts the worker unchanged and, beside
it, a thread that every ``--recover-every`` seconds calls
:func:`batches.processing.batches_recover`: django-tasks-db has no hook for this and
leaves the task of a SIGKILLed worker RUNNING forever (django-tasks issue 46).
"""

import logging
import threading
import time

from django.conf import settings
from django.db import connection
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand
from django_tasks_db.management.commands.db_worker import valid_interval

from batches.processing import batches_recover

logger = logging.getLogger("batches.worker")


def default_recover_every() -> float:
    return max(0.5, min(60.0, settings.BATCH_STALE_AFTER / 4))


class Command(DbWorkerCommand):
    help = (
        "Run a database background worker (django-tasks-db) that also re-queues "
        "batches whose worker died."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--recover-every",
            type=valid_interval,
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
        return super().handle(*args, **options)


def _recover_forever(every: float) -> None:
    while True:
        try:
            batches_recover()
        except Exception:
            logger.exception("Looking for lost batches failed")
        finally:
            connection.close()
        time.sleep(every)
