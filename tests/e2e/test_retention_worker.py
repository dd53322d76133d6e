"""Retention with a live ``db_worker``: its sweep purges what is older than the
settings allow while the API goes on taking runs and the worker goes on running
batches, and ``manage.py purge`` may run beside it."""

import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from batches.models import Batch, BatchStatus
from setuplogs.models import LogEntry
from tests.batches.factories import csv_upload, finished, make_batch, post_batch
from tests.conftest import make_run
from tests.support.waiting import wait_until
from traces.models import Run

pytestmark = pytest.mark.django_db(transaction=True)

OLD = timezone.now() - timedelta(days=10)


def old_runs(count: int, lines: int) -> list[int]:
    runs = Run.objects.bulk_create(
        Run(
            owner_id=None,
            event_id=f"00000000-0000-4000-8000-{n:012d}",
            run_id=f"old-{n}",
            agent_name="a",
            job_type="j",
            start_time=OLD,
        )
        for n in range(count)
    )
    Run.objects.filter(pk__in=[run.pk for run in runs]).update(updated_at=OLD)
    LogEntry.objects.bulk_create(
        LogEntry(run=run, seq=s, timestamp=OLD, message="x", received_at=OLD)
        for run in runs
        for s in range(1, lines + 1)
    )
    return [run.pk for run in runs]


def test_a_live_worker_purges_old_runs_and_batches_while_work_goes_on(api, alice, start_worker):
    pks = old_runs(300, lines=5)
    old_batch = make_batch(alice, [("q", "")])
    Batch.objects.filter(pk=old_batch.pk).update(status=BatchStatus.PROCESSED, finished_at=OLD)
    start_worker(RETAIN_RUNS_DAYS=1, RETAIN_BATCHES_DAYS=1, RETAIN_SWEEP_EVERY=1)

    new_batch = post_batch(api, csv_upload([("q1", "a"), ("q2", "b")])).json()["batch_id"]
    sent = []
    while Run.objects.filter(pk__in=pks).exists():  # runs keep arriving during the purge
        run = make_run()
        assert api.post("/api/v1/runs/batch", {"runs": [run]}, format="json").status_code == 201
        sent.append(run["run_id"])
        assert len(sent) < 2000, "the sweep did not purge the old runs"
    wait_until(lambda: not Batch.objects.filter(pk=old_batch.pk).exists(), message="old batch")

    assert not LogEntry.objects.filter(run_id__in=pks).exists()
    assert set(Run.objects.values_list("run_id", flat=True)) == set(sent)
    done = wait_until(lambda: finished(new_batch), message="the new batch processed")
    assert done.status == BatchStatus.PROCESSED and done.finished_at > OLD


def test_the_purge_command_runs_beside_a_live_worker_s_sweep(start_worker, settings):
    pks = old_runs(2000, lines=10)
    settings.RETAIN_RUNS_DAYS = 1
    start_worker(RETAIN_RUNS_DAYS=1, RETAIN_SWEEP_EVERY=1)
    wait_until(lambda: LogEntry.objects.count() < 20_000, message="the sweep under way")
    out = io.StringIO()
    call_command("purge", "--chunk", "50", stdout=out, stderr=io.StringIO())
    wait_until(lambda: not Run.objects.filter(pk__in=pks).exists(), message="old runs gone")
    assert not LogEntry.objects.exists()
    assert "log lines: deleted " in out.getvalue()
