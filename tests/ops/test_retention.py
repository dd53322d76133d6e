"""Retention: ``manage.py purge`` and the purge it runs (the worker's sweep runs the
same one): what is older than the settings allow goes, in chunks, with what hangs off
it; nothing goes while the settings are empty."""

import io
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.utils import timezone

from batches.models import Batch, BatchStatus, Interaction
from batchsvc.ops import retention
from openai_api.files import storage
from openai_api.models import File, FilePurpose, Lines
from setuplogs.models import LogEntry
from tests.batches.factories import make_batch
from traces.models import Run, TraceFile
from webhooks.models import Delivery, Endpoint, Event

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def purge(*args) -> str:
    out = io.StringIO()
    call_command("purge", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def stored_run(api, run_factory, *, days_old: int, lines: int = 0) -> Run:
    body = run_factory()
    assert api.post("/api/v1/runs/", body, format="json").status_code == 201
    run = Run.objects.get(run_id=body["run_id"])
    then = timezone.now() - days_old * DAY
    Run.objects.filter(pk=run.pk).update(start_time=then, updated_at=then)
    LogEntry.objects.bulk_create(
        LogEntry(run=run, seq=n, timestamp=then, message=f"line {n}", received_at=then)
        for n in range(1, lines + 1)
    )
    return run


def written_trace(api, name: str, *, days_old: int) -> TraceFile:
    body = {"trace_data": "{}", "file_name": name, "output_directory": "nightly"}
    assert api.post("/api/v1/traces/write", body, format="json").status_code == 201
    then = timezone.now() - days_old * DAY
    TraceFile.objects.filter(path=f"nightly/{name}").update(created_at=then, updated_at=then)
    return TraceFile.objects.get(path=f"nightly/{name}")


def finished_batch(owner, *, days_old: int, status=BatchStatus.PROCESSED) -> Batch:
    batch = make_batch(owner, [("q1", ""), ("q2", ""), ("q3", "")])
    Batch.objects.filter(pk=batch.pk).update(
        status=status, finished_at=timezone.now() - days_old * DAY
    )
    return batch


def test_nothing_is_deleted_while_every_retention_setting_is_empty(api, run_factory, alice):
    stored_run(api, run_factory, days_old=3000, lines=2)
    finished_batch(alice, days_old=3000)
    output = purge()
    assert "runs: kept forever (RETAIN_RUNS_DAYS is empty)" in output
    assert "batches: kept forever (RETAIN_BATCHES_DAYS is empty)" in output
    assert output.endswith("Nothing to delete.\n")
    assert Run.objects.count() == 1 and Batch.objects.count() == 1


def test_a_dry_run_says_what_would_go_and_deletes_nothing(api, run_factory, settings):
    settings.RETAIN_RUNS_DAYS = 30
    stored_run(api, run_factory, days_old=40, lines=3)
    stored_run(api, run_factory, days_old=5, lines=2)
    output = purge("--dry-run")
    assert "log lines: would delete 3 (older than 30 days: before " in output
    assert "runs: would delete 1 (older than 30 days" in output
    assert output.endswith("Would delete 3 log lines, 1 runs.\n")
    assert Run.objects.count() == 2 and LogEntry.objects.count() == 5


def test_old_runs_go_with_their_log_lines_and_recent_ones_stay(api, run_factory, settings):
    settings.RETAIN_RUNS_DAYS = 30
    old = stored_run(api, run_factory, days_old=31, lines=4)
    recent = stored_run(api, run_factory, days_old=29, lines=2)
    output = purge()
    assert output.endswith("Deleted 4 log lines, 1 runs.\n")
    assert list(Run.objects.all()) == [recent]
    assert not LogEntry.objects.filter(run_id=old.pk).exists()
    assert LogEntry.objects.filter(run=recent).count() == 2


def test_an_old_run_changed_since_the_cut_off_is_kept(api, run_factory, settings):
    settings.RETAIN_RUNS_DAYS = 30
    run = stored_run(api, run_factory, days_old=31)
    Run.objects.filter(pk=run.pk).update(updated_at=timezone.now())
    purge()
    assert Run.objects.filter(pk=run.pk).exists()


def test_chunks_smaller_than_a_run_s_lines_still_delete_every_line(api, run_factory, settings):
    settings.RETAIN_RUNS_DAYS = 1
    runs = [stored_run(api, run_factory, days_old=2, lines=n) for n in (7, 0, 1, 3)]
    kept = stored_run(api, run_factory, days_old=0, lines=2)
    seen = []
    outcomes = retention.purge(chunk=3, progress=lambda purger, n: seen.append((purger.name, n)))
    counts = {outcome.purger.name: outcome.count for outcome in outcomes}
    assert counts["log lines"] == 11 and counts["runs"] == 4
    assert all(n <= 3 for _, n in seen)
    assert not Run.objects.filter(pk__in=[run.pk for run in runs]).exists()
    assert LogEntry.objects.count() == 2 and Run.objects.get() == kept


def test_the_age_given_on_the_command_line_overrides_the_setting(api, run_factory, settings):
    settings.RETAIN_RUNS_DAYS = None
    stored_run(api, run_factory, days_old=10)
    assert purge("--runs-days", "20").endswith("Nothing to delete.\n")
    assert purge("--runs-days", "7").endswith("Deleted 1 runs.\n")


@pytest.mark.parametrize("age", ["-1", "-30", "ten", "1.5"])
def test_a_negative_or_non_numeric_age_is_a_usage_error(age):
    with pytest.raises(CommandError, match="--runs-days: must be a whole number of days, 0 or"):
        purge("--runs-days", age)


def test_a_chunk_of_zero_rows_is_a_usage_error():
    with pytest.raises(CommandError, match="--chunk: must be a whole number above 0"):
        purge("--chunk", "0")


def test_a_negative_retention_setting_is_refused_when_settings_are_read(monkeypatch):
    from django.core.exceptions import ImproperlyConfigured

    from batchsvc.settings import env_days

    monkeypatch.setenv("RETAIN_RUNS_DAYS", "-3")
    with pytest.raises(ImproperlyConfigured, match="RETAIN_RUNS_DAYS must be 0 or more days"):
        env_days("RETAIN_RUNS_DAYS")
    monkeypatch.setenv("RETAIN_RUNS_DAYS", "")
    assert env_days("RETAIN_RUNS_DAYS") is None


def test_trace_files_leave_the_storage_with_their_rows(api, alice_root, settings):
    settings.RETAIN_TRACE_FILES_DAYS = 7
    old = written_trace(api, "old.json", days_old=8)
    recent = written_trace(api, "recent.json", days_old=6)
    assert (alice_root / "nightly" / "old.json").exists()
    assert purge().endswith("Deleted 1 trace files.\n")
    assert not TraceFile.objects.filter(pk=old.pk).exists()
    assert not (alice_root / "nightly" / "old.json").exists()
    assert TraceFile.objects.filter(pk=recent.pk).exists()
    assert (alice_root / "nightly" / "recent.json").exists()


def test_a_trace_file_written_again_since_the_cut_off_is_kept(api, alice_root, settings):
    settings.RETAIN_TRACE_FILES_DAYS = 7
    written_trace(api, "again.json", days_old=30)
    body = {"trace_data": "{}", "file_name": "again.json", "output_directory": "nightly"}
    assert api.post("/api/v1/traces/write", body, format="json").status_code == 201
    purge()
    assert TraceFile.objects.count() == 1
    assert (alice_root / "nightly" / "again.json").exists()


def test_finished_batches_go_with_their_items_and_webhook_deliveries(alice, settings):
    settings.RETAIN_BATCHES_DAYS = 30
    old = finished_batch(alice, days_old=31, status=BatchStatus.COMPLETED_WITH_ERRORS)
    endpoint = Endpoint.objects.create(owner=alice, url="http://x/", events=[], secret="s")
    event = Event.objects.create(type="batch.completed", batch=old, payload={})
    Delivery.objects.create(event=event, endpoint=endpoint, retry_until=timezone.now())
    recent = finished_batch(alice, days_old=29)
    running = make_batch(alice, [("q1", "")])
    Batch.objects.filter(pk=running.pk).update(
        status=BatchStatus.PROCESSING, finished_at=timezone.now() - 90 * DAY
    )
    output = purge("--chunk", "2")
    assert output.endswith("Deleted 3 batch items, 1 batches.\n")
    assert set(Batch.objects.values_list("pk", flat=True)) == {recent.pk, running.pk}
    assert not Interaction.objects.filter(batch_id=old.pk).exists()
    assert not Event.objects.exists() and not Delivery.objects.exists()
    assert Endpoint.objects.filter(pk=endpoint.pk).exists()


def test_the_batch_api_says_when_a_finished_batch_expires(api, alice, settings):
    batch = finished_batch(alice, days_old=2)
    assert api.get(f"/api/v1/batches/{batch.pk}").json()["expires_at"] is None
    settings.RETAIN_BATCHES_DAYS = 30
    batch.refresh_from_db()
    body = api.get(f"/api/v1/batches/{batch.pk}").json()
    expected = (batch.finished_at + 30 * DAY).isoformat().replace("+00:00", "Z")
    assert body["expires_at"] == expected
    listed = api.get("/api/v1/batches/").json()["results"]
    assert [item["expires_at"] for item in listed] == [expected]


def test_a_batch_that_has_not_ended_has_no_expiry(api, alice, settings):
    settings.RETAIN_BATCHES_DAYS = 30
    batch = make_batch(alice, [("q1", "")])
    assert api.get(f"/api/v1/batches/{batch.pk}").json()["expires_at"] is None


def test_an_old_batchs_openai_result_files_leave_the_storage_with_it(
    alice, settings, trace_root, django_capture_on_commit_callbacks
):
    settings.RETAIN_BATCHES_DAYS = 30
    old, recent = finished_batch(alice, days_old=31), finished_batch(alice, days_old=29)
    names = {}
    for batch in (old, recent):
        name = storage().save(f"owners/{alice.pk}/openai/{batch.pk}.jsonl", ContentFile(b"{}"))
        File.objects.create(
            owner=alice,
            purpose=FilePurpose.BATCH_OUTPUT,
            filename="out.jsonl",
            bytes=2,
            storage_name=name,
            batch=batch,
            lines=Lines.OUTPUT,
        )
        names[batch.pk] = name

    with django_capture_on_commit_callbacks(execute=True):
        output = purge()

    assert "1 OpenAI result files" in output
    assert list(File.objects.values_list("batch_id", flat=True)) == [recent.pk]
    assert not storage().exists(names[old.pk])
    assert storage().exists(names[recent.pk])
