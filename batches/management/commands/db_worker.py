"""``db_worker`` from django-tasks-db, plus recovery of work left by dead workers and
riding through database outages.

Our batches app comes before django_tasks_db in INSTALLED_APPS, so this command is
what ``python manage.py db_worker`` runs. It adds four things django-tasks-db has
no hook for:

1. a thread that every ``--recover-every`` seconds calls
   :func:`batches.engine.recovery.batches_recover`: django-tasks-db leaves the task of a
   SIGKILLed worker RUNNING forever;
2. a graceful stop that does not wait for a whole batch: on SIGTERM/SIGINT the batch
   task ends its conversations after their current row and queues the batch again;
3. a heartbeat of the process itself (batches.engine.heartbeats), idle or not, for /readyz
   and /metrics;
4. riding through a database outage: django-tasks-db's loop lets the first
   connection error out and the process exits. Ours closes the broken connection,
   backs off and enters the loop again; a task's outcome is recorded once the
   database is back (the batch task itself waits outages out, see
   batches.engine.worker);
5. threads that send webhook deliveries (webhooks.delivery) and purge what the
   retention settings no longer keep (batchsvc.ops.retention).
"""

import logging
import os
import threading
import time

from django.conf import settings
from django.core.management import CommandError
from django.db import connection
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV, run_with_reloader
from django_tasks_db.management.commands import db_worker as upstream

from batches.engine.counters import stopping
from batches.engine.heartbeats import Heartbeat
from batches.engine.recovery import batches_recover
from batchsvc.ops.outages import (
    DATABASE_ERRORS,
    Backoff,
    close_connections,
    describe,
    log_outage,
    retry_while_unavailable,
)
from batchsvc.ops.retention import sweep_forever
from webhooks.delivery import deliver_forever

logger = logging.getLogger("batches.engine.worker")


# The options upstream's Command passes on to its Worker as they are.
WORKER_OPTIONS = ("interval", "backend_name", "startup_delay", "max_tasks", "worker_id")


def default_recover_every() -> float:
    return max(0.5, min(60.0, settings.BATCH_STALE_AFTER / 4))


class Worker(upstream.Worker):
    def shutdown(self, signum, frame) -> None:
        stopping.set()
        super().shutdown(signum, frame)

    def run(self) -> None:
        """django-tasks-db's loop, entered again after each database error it lets out."""
        backoff = Backoff()
        while True:
            try:
                return super().run()
            except DATABASE_ERRORS as exc:
                if not self.running:
                    return  # asked to stop: no waiting for the database
                close_connections()
                delay = backoff.next()
                log_outage(f"Worker {self.worker_id}", exc, delay, backoff)
                if stopping.wait(delay):
                    return
                self.startup_delay = False

    def run_task(self, db_task_result) -> None:
        super().run_task(Outcome(db_task_result))


class Outcome:
    """A task's result row whose outcome is recorded once the database answers: the
    task has run, and a lost outcome would leave it RUNNING until recovery calls it
    lost (django-tasks-db tries three times in 0.2 s, on the same broken connection)."""

    def __init__(self, result):
        self._result = result

    def __getattr__(self, name):
        return getattr(self._result, name)

    def set_successful(self, return_value) -> None:
        self._record(self._result.set_successful, return_value)

    def set_failed(self, exc: BaseException) -> None:
        self._record(self._result.set_failed, exc)

    def _record(self, record, value) -> None:
        what = f"Task {self._result.id}: outcome"
        retry_while_unavailable(lambda: record(value), what=what, stop=stopping)


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
        _start_housekeeping()
        return self.run_worker(**options)

    def run_worker(
        self, *, verbosity, queue_name, exclude_queues, reload, batch, **options
    ) -> None:
        """upstream.Command.handle with our Worker: it has no hook for the class."""
        self.configure_logging(verbosity)
        if reload and batch:
            logger.warning("--reload and --batch cannot be specified together: no autoreload.")
            reload = False
        queue_names = queue_name.split(",")
        excluded = exclude_queues.split(",") if exclude_queues else []
        if excluded and "*" not in queue_names:
            raise CommandError("--exclude-queues can only be used with --queue-name=*")
        worker = Worker(
            queue_names=queue_names,
            excluded_queue_names=excluded,
            batch=batch,
            **{key: options[key] for key in WORKER_OPTIONS},
        )
        # Signals first, then the heartbeat: a worker seen alive stops cleanly.
        if not reload or os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
            worker.configure_signals()  # with the reloader, only its child process
        heartbeat = Heartbeat().start()
        try:
            if reload:
                run_with_reloader(worker.run)
            else:
                worker.run()
        finally:
            heartbeat.stop()


def _recover_forever(every: float) -> None:
    while True:
        try:
            batches_recover()
        except DATABASE_ERRORS as exc:
            logger.warning(
                "Looking for lost batches: the database is unavailable (%s)", describe(exc)
            )
        except Exception:
            logger.exception("Looking for lost batches failed")
        finally:
            connection.close()
        time.sleep(every)


def _start_housekeeping() -> None:
    """A thread for webhook deliveries and one for the retention sweep: a long purge
    never holds up a delivery."""
    threading.Thread(
        target=deliver_forever, kwargs={"stop": stopping}, name="webhook-deliveries", daemon=True
    ).start()
    if every := settings.RETAIN_SWEEP_EVERY:
        threading.Thread(
            target=sweep_forever,
            kwargs={"every": every, "stop": stopping},
            name="retention-sweep",
            daemon=True,
        ).start()
