"""Processing a batch in this process (threads, real database): what a worker's task does."""

import threading
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from batches.engine import sql
from batches.engine.counters import stopping
from batches.engine.recovery import batches_recover
from batches.engine.worker import batch_process
from batches.models import Batch, BatchStatus, Interaction, InteractionStatus
from batches.processors.base import ProcessorError
from batches.processors.echo import EchoProcessor
from batches.processors.lanes import Interrupted
from batches.services import batch_cancel
from batches.tasks import enqueue_batch
from tests.batches.factories import make_batch

pytestmark = pytest.mark.django_db(transaction=True)

TEST_PROCESSORS = {
    "echo": "batches.processors.echo.EchoProcessor",
    "http": "batches.processors.http.HttpProcessor",
    "flaky": "tests.batches.test_processing.FlakyProcessor",
    "pair": "tests.batches.test_processing.PairProcessor",
    "canceller": "tests.batches.test_processing.CancellingProcessor",
    "watcher": "tests.batches.test_processing.CounterWatcher",
    "nul": "tests.batches.test_processing.NulProcessor",
    "stopped": "tests.batches.test_processing.StoppedWhileWaitingProcessor",
}


class StoppedWhileWaitingProcessor(EchoProcessor):
    """The worker is asked to stop while the second row waits for a rate limit's slot
    (as batches.processors.lanes does then)."""

    def process(self, input, history):
        if input["question"] == "second":
            stopping.set()
            raise Interrupted("The worker stopped while the lane waited.")
        return super().process(input, history)


class FlakyProcessor(EchoProcessor):
    """Fails the questions that say "fail"; crashes on "crash"."""

    def process(self, input, history):
        if "crash" in input["question"]:
            raise KeyError("bug")
        if "fail" in input["question"]:
            raise ProcessorError("the model refused")
        return super().process(input, history)


class PairProcessor(EchoProcessor):
    """Answers only when another conversation is being processed at the same time."""

    barrier = threading.Barrier(2)
    timeout = 10

    def process(self, input, history):
        try:
            self.barrier.wait(timeout=self.timeout)
        except threading.BrokenBarrierError:
            raise ProcessorError("ran alone") from None
        return super().process(input, history)


class CancellingProcessor(EchoProcessor):
    """Cancels its batch while processing the first row."""

    def process(self, input, history):
        if input["question"] == "first":
            batch_cancel(batch=Interaction.objects.get(input__question="first").batch)
        return super().process(input, history)


class CounterWatcher(EchoProcessor):
    """Records, at row 30, how many items the batch's counters say have ended."""

    seen = []

    def process(self, input, history):
        if input["question"] == "q30":
            batch = Batch.objects.get()
            type(self).seen.append(batch.processed_items + batch.failed_items)
        return super().process(input, history)


class NulProcessor(EchoProcessor):
    """Answers with NUL characters in text, keys and lists; fails with one in its
    error on "refuse"; answers what no database stores (NaN in JSON) on "nan"."""

    def process(self, input, history):
        question = input["question"]
        if question == "refuse":
            raise ProcessorError("refused\x00 here")
        if question == "nan":
            return {"text": "not a number", "score": float("nan")}
        answer = super().process(input, history)
        if question == "nul":
            return {**answer, "text": "x\x00y", "k\x00": ["a\x00b", {"c": "\x00"}]}
        return answer


@pytest.fixture(autouse=True)
def _processors(settings):
    settings.BATCH_PROCESSORS = TEST_PROCESSORS
    settings.BATCH_HTTP_URL = "http://127.0.0.1:9/"


def statuses(batch):
    return dict(batch.interactions.values_list("row_number", "status"))


def test_a_conversation_runs_in_row_order_with_its_history(alice):
    rows = [("one", "a"), ("alone", ""), ("two", "a"), ("other", "b"), ("three", "a")]
    batch = make_batch(alice, rows)

    result = batch_process(batch_id=batch.pk)

    assert result["status"] == BatchStatus.PROCESSED
    outputs = dict(batch.interactions.values_list("row_number", "output"))
    assert [outputs[n]["text"] for n in (2, 4, 6)] == [
        "echo: one (turn 1)",
        "echo: two (turn 2)",
        "echo: three (turn 3)",
    ]
    assert outputs[3]["turn"] == outputs[5]["turn"] == 1
    a = list(batch.interactions.filter(chat_id="a").order_by("row_number"))
    assert a[0].finished_at <= a[1].started_at and a[1].finished_at <= a[2].started_at
    batch.refresh_from_db()
    assert (batch.processed_items, batch.failed_items, batch.progress) == (5, 0, 100)
    assert batch.started_at and batch.finished_at
    assert set(batch.interactions.values_list("attempts", flat=True)) == {1}


def test_one_failed_item_is_recorded_and_processing_goes_on(alice):
    batch = make_batch(
        alice, [("ok", "a"), ("fail", "a"), ("crash", ""), ("ok again", "a")], processor="flaky"
    )

    batch_process(batch_id=batch.pk)

    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED_WITH_ERRORS
    assert (batch.processed_items, batch.failed_items) == (2, 2)
    errors = dict(batch.interactions.values_list("row_number", "error"))
    assert errors[3] == "the model refused"
    assert errors[4] == "The processor failed unexpectedly (KeyError)."
    # The failed exchange is not part of the history.
    assert batch.interactions.get(row_number=5).output["turn"] == 2


def test_a_batch_where_every_item_fails_is_failed_and_says_why(alice):
    batch = make_batch(alice, [("fail 1", ""), ("fail 2", "")], processor="flaky")
    batch_process(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.failed_items) == (BatchStatus.FAILED, 2)
    assert batch.error == "All 2 items failed with the same error: the model refused"


def test_a_batch_whose_items_fail_differently_names_the_most_common_error(alice):
    rows = [("fail 1", ""), ("crash", ""), ("fail 2", "")]
    batch = make_batch(alice, rows, processor="flaky")
    batch_process(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.error) == (
        BatchStatus.FAILED,
        "Every item failed; 2 with: the model refused",
    )


def test_a_processor_that_cannot_be_used_fails_the_batch_with_the_reason(alice, settings):
    batch = make_batch(alice, [("q", "")], processor="http")
    settings.BATCH_HTTP_URL = ""

    batch_process(batch_id=batch.pk)

    batch.refresh_from_db()
    assert batch.status == BatchStatus.FAILED
    assert "BATCH_HTTP_URL" in batch.error
    assert batch.interactions.get().status == InteractionStatus.FAILED


def test_different_conversations_run_at_the_same_time(alice, settings, monkeypatch):
    settings.BATCH_CONCURRENCY = 2
    monkeypatch.setattr(PairProcessor, "barrier", threading.Barrier(2))
    batch = make_batch(alice, [("q1", "a"), ("q2", "b")], processor="pair")
    batch_process(batch_id=batch.pk)
    assert set(statuses(batch).values()) == {InteractionStatus.SUCCEEDED}


def test_with_a_concurrency_of_one_conversations_run_one_after_the_other(
    alice, settings, monkeypatch
):
    settings.BATCH_CONCURRENCY = 1
    monkeypatch.setattr(PairProcessor, "barrier", threading.Barrier(2))
    monkeypatch.setattr(PairProcessor, "timeout", 0.2)
    batch = make_batch(alice, [("q1", "a"), ("q2", "b")], processor="pair")
    batch_process(batch_id=batch.pk)
    assert set(batch.interactions.values_list("error", flat=True)) == {"ran alone"}


def test_cancel_stops_a_conversation_before_its_next_item_starts(alice, settings):
    settings.BATCH_CONCURRENCY = 1
    batch = make_batch(
        alice, [("first", "a"), ("second", "a"), ("third", "a")], processor="canceller"
    )

    batch_process(batch_id=batch.pk)

    assert statuses(batch) == {2: "succeeded", 3: "cancelled", 4: "cancelled"}
    assert batch.interactions.get(row_number=3).started_at is None
    batch.refresh_from_db()
    assert (batch.status, batch.processed_items, batch.cancelled_items) == ("cancelled", 1, 2)
    assert (batch.progress, batch.ended_progress) == (33, 100)


def test_counters_are_written_while_the_batch_runs(alice, settings):
    settings.BATCH_CONCURRENCY = 1
    CounterWatcher.seen = []
    batch = make_batch(alice, [(f"q{n}", "a") for n in range(40)], processor="watcher")
    batch_process(batch_id=batch.pk)
    # 30 items had ended when q30 started; counters lag by fewer than 10.
    assert CounterWatcher.seen and CounterWatcher.seen[0] > 20


def test_a_worker_flushing_after_another_finished_the_batch_counts_nothing_twice(alice):
    # Two workers share a batch; one writes the exact final counts while the other
    # still holds running totals for its last items, which it flushes afterwards.
    batch = make_batch(alice, [(f"q{n}", "") for n in range(3)])
    batch_process(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.processed_items) == ("processed", 3)

    sql.add_counts(batch.pk, succeeded=2, failed=1)

    batch.refresh_from_db()
    assert (batch.processed_items, batch.failed_items) == (3, 0)


def _left_by_a_dead_worker(batch, *, heartbeat):
    """Rows as a killed worker leaves them: row 2 done, row 3 running, row 4 pending."""
    old = timezone.now() - timedelta(hours=1)
    done = batch.interactions.get(row_number=2)
    done.status, done.output, done.attempts = "succeeded", {"text": "echo: one (turn 1)"}, 1
    done.started_at = done.finished_at = old
    done.save()
    batch.interactions.filter(row_number=3).update(
        status="running", claimed_by="dead/0", heartbeat_at=heartbeat, attempts=1, started_at=old
    )
    Batch.objects.filter(pk=batch.pk).update(status="processing", heartbeat_at=old)
    return done


def test_a_row_left_running_by_a_dead_worker_is_run_again_and_finished_rows_are_not(alice):
    batch = make_batch(alice, [("one", "a"), ("two", "a"), ("three", "a")])
    done = _left_by_a_dead_worker(batch, heartbeat=timezone.now() - timedelta(hours=1))

    batch_process(batch_id=batch.pk)

    batch.refresh_from_db()
    assert (batch.status, batch.processed_items) == (BatchStatus.PROCESSED, 3)
    rows = {i.row_number: i for i in batch.interactions.all()}
    assert (rows[2].finished_at, rows[2].attempts) == (done.finished_at, 1)
    assert rows[3].attempts == 2
    assert rows[4].output["text"] == "echo: three (turn 3)"


def test_a_conversation_with_a_live_heartbeat_is_left_to_its_worker(alice):
    batch = make_batch(alice, [("one", "a"), ("two", "a"), ("three", "a"), ("free", "b")])
    _left_by_a_dead_worker(batch, heartbeat=timezone.now())

    batch_process(batch_id=batch.pk)

    assert statuses(batch) == {2: "succeeded", 3: "running", 4: "pending", 5: "succeeded"}
    assert Batch.objects.get(pk=batch.pk).status == BatchStatus.PROCESSING


def test_recovery_requeues_a_batch_whose_worker_died_and_fails_its_lost_task(alice, settings):
    settings.BATCH_STALE_AFTER = 60
    lost = make_batch(alice, [("q", "")])
    alive = make_batch(alice, [("q", "")])
    DBTaskResult.objects.all().delete()
    long_ago = timezone.now() - timedelta(seconds=61)
    for batch in (lost, alive):
        DBTaskResult.objects.filter(pk=enqueue_batch(batch.pk)).update(
            status="RUNNING", started_at=long_ago
        )
    Batch.objects.filter(pk=lost.pk).update(status="processing", heartbeat_at=long_ago)
    Batch.objects.filter(pk=alive.pk).update(status="processing")

    assert batches_recover() == [str(lost.pk)]

    tasks = DBTaskResult.objects.filter(args_kwargs__kwargs__batch_id=str(lost.pk))
    assert sorted(tasks.values_list("status", flat=True)) == ["FAILED", "READY"]
    assert "WorkerLost" in tasks.get(status="FAILED").exception_class_path
    assert not DBTaskResult.objects.filter(
        args_kwargs__kwargs__batch_id=str(alive.pk), status="FAILED"
    ).exists()
    # Its new task is waiting: nothing more to recover.
    Batch.objects.filter(pk=lost.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=61))
    assert batches_recover() == []


def test_recovery_requeues_a_queued_batch_whose_task_was_never_queued(alice, settings):
    settings.BATCH_STALE_AFTER = 60
    batch = make_batch(alice, [("q", "")])
    DBTaskResult.objects.all().delete()  # as if the enqueue after commit had failed
    Batch.objects.filter(pk=batch.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=61))

    assert batches_recover() == [str(batch.pk)]
    assert DBTaskResult.objects.filter(status="READY").count() == 1


def test_recovery_fails_a_lost_task_whose_batch_another_worker_finished(alice, settings):
    settings.BATCH_STALE_AFTER = 60
    batch = make_batch(alice, [("q", "")])
    long_ago = timezone.now() - timedelta(seconds=61)
    DBTaskResult.objects.update(status="RUNNING", started_at=long_ago)
    Batch.objects.filter(pk=batch.pk).update(status="processed", heartbeat_at=long_ago)

    assert batches_recover() == []
    assert DBTaskResult.objects.get().status == "FAILED"


def test_nul_characters_in_an_answer_or_an_error_are_dropped_and_the_items_stored(alice):
    batch = make_batch(alice, [("nul", "c"), ("refuse", "c"), ("after", "c")], processor="nul")
    result = batch_process(batch_id=batch.pk)
    items = {i.input["question"]: i for i in batch.interactions.all()}
    assert items["nul"].status == InteractionStatus.SUCCEEDED
    assert items["nul"].output == {"text": "xy", "turn": 1, "k": ["ab", {"c": ""}]}
    assert (items["refuse"].status, items["refuse"].error) == ("failed", "refused here")
    assert items["after"].status == InteractionStatus.SUCCEEDED
    assert items["after"].output["turn"] == 2  # the answer with NULs is its history
    assert result["status"] == BatchStatus.COMPLETED_WITH_ERRORS


def test_an_answer_the_database_refuses_fails_its_item_and_the_conversation_goes_on(alice):
    # NaN is not JSON: PostgreSQL refuses it as input, SQLite by its JSON_VALID check.
    rows = [("first", "c"), ("nan", "c"), ("after", "c"), ("alone", "")]
    batch = make_batch(alice, rows, processor="nul")
    result = batch_process(batch_id=batch.pk)
    items = {i.input["question"]: i for i in batch.interactions.all()}
    assert items["nan"].status == InteractionStatus.FAILED
    assert items["nan"].error.startswith("The processor's answer could not be stored (")
    assert items["nan"].output is None
    assert [items[q].status for q in ("first", "after", "alone")] == ["succeeded"] * 3
    assert not batch.interactions.filter(status=InteractionStatus.RUNNING).exists()
    assert (result["status"], result["processed_items"], result["failed_items"]) == (
        BatchStatus.COMPLETED_WITH_ERRORS,
        3,
        1,
    )


def test_recovery_finishes_a_batch_cancelled_while_its_worker_died(alice, settings):
    settings.BATCH_STALE_AFTER = 60
    batch = make_batch(alice, [("one", "a"), ("two", "a"), ("three", "a"), ("four", "")])
    _left_by_a_dead_worker(batch, heartbeat=timezone.now() - timedelta(hours=1))
    batch_cancel(batch=batch)  # rows 4 and 5 were pending; row 3 stays running
    DBTaskResult.objects.all().delete()

    assert batches_recover() == []

    assert statuses(batch) == {2: "succeeded", 3: "failed", 4: "cancelled", 5: "cancelled"}
    assert "stopped (was it killed?) after its batch was cancelled" in (
        batch.interactions.get(row_number=3).error
    )
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED
    assert (batch.processed_items, batch.failed_items, batch.cancelled_items) == (1, 1, 2)
    assert not DBTaskResult.objects.exists()  # a cancelled batch is not queued again


def test_recovery_leaves_the_running_row_of_a_cancelled_batch_whose_worker_is_alive(
    alice, settings
):
    settings.BATCH_STALE_AFTER = 60
    batch = make_batch(alice, [("one", "a"), ("two", "a")])
    _left_by_a_dead_worker(batch, heartbeat=timezone.now())
    batch_cancel(batch=batch)
    Batch.objects.filter(pk=batch.pk).update(heartbeat_at=timezone.now())

    batches_recover()

    assert statuses(batch) == {2: "succeeded", 3: "running"}


def test_recovery_makes_the_counters_exact_when_a_worker_died_after_its_last_row(alice, settings):
    # The row ended after the cancel, which counters do not count any more; the
    # worker touched the batch, then died before batch_finish.
    settings.BATCH_STALE_AFTER = 60
    batch = make_batch(alice, [("one", "a"), ("two", "b")])
    batch.interactions.filter(row_number=3).update(status="running", heartbeat_at=timezone.now())
    batch_cancel(batch=batch)
    batch.interactions.filter(row_number=3).update(status="succeeded", output={"text": "x"})
    Batch.objects.filter(pk=batch.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=61))
    Batch.objects.filter(pk=batch.pk).update(updated_at=timezone.now() - timedelta(seconds=62))

    batches_recover()

    batch.refresh_from_db()
    assert (batch.processed_items, batch.failed_items, batch.cancelled_items) == (1, 0, 1)
    assert not Batch.objects.cancelled_unfinished(before=timezone.now())  # left alone now


def test_recovery_makes_the_counters_exact_when_a_worker_died_before_its_next_beat(alice, settings):
    # As above, but the worker died between recording its last row and touching the
    # batch again: nothing on the batch itself says a worker came after the cancel.
    settings.BATCH_STALE_AFTER = 60
    batch = make_batch(alice, [("one", "a"), ("two", "b"), ("three", "c")])
    batch.interactions.filter(row_number__in=[2, 3]).update(
        status="running", heartbeat_at=timezone.now()
    )
    batch_cancel(batch=batch)
    long_ago = timezone.now() - timedelta(seconds=61)
    Batch.objects.filter(pk=batch.pk).update(heartbeat_at=long_ago, updated_at=long_ago)
    batch.interactions.filter(row_number=2).update(status="succeeded", output={"text": "x"})
    batch.interactions.filter(row_number=3).update(status="failed", error="no")
    untouched = Batch.objects.filter(pk=batch.pk).values_list("updated_at", flat=True).get()
    DBTaskResult.objects.all().delete()

    batches_recover()

    batch.refresh_from_db()
    assert (batch.processed_items, batch.failed_items, batch.cancelled_items) == (1, 1, 1)
    assert batch.updated_at > untouched
    assert not DBTaskResult.objects.exists()  # a cancelled batch is not queued again


def test_a_row_whose_worker_stops_while_it_waits_for_a_slot_is_left_pending_unrun(alice):
    batch = make_batch(alice, [("first", "c"), ("second", "c")], processor="stopped")
    try:
        batch_process(batch_id=batch.pk)
    finally:
        stopping.clear()

    first, second = batch.interactions.order_by("row_number")
    assert (first.status, first.attempts) == (InteractionStatus.SUCCEEDED, 1)
    assert (second.status, second.attempts, second.claimed_by) == ("pending", 0, "")
    assert second.started_at is None and second.error == ""
