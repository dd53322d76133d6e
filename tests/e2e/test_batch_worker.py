"""Batches processed by real ``manage.py db_worker`` processes, killed and restarted."""

import pytest
from django_tasks_db.models import DBTaskResult

from batches.models import Batch, BatchStatus, Interaction, InteractionStatus
from tests.batches.factories import csv_upload, finished, make_batch, post_batch
from tests.support.stubs import closed_port_url
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_process_processes_an_uploaded_batch(api, start_worker):
    rows = [(f"question {n}", f"chat {n % 3}") for n in range(12)]
    response = post_batch(api, csv_upload(rows))
    assert response.status_code == 202
    start_worker(BATCH_CONCURRENCY=3)

    batch = wait_until(lambda: finished(response.json()["batch_id"]), message="batch end")

    assert (batch.status, batch.processed_items, batch.failed_items) == ("processed", 12, 0)
    turns = [
        i.output["turn"] for i in batch.interactions.filter(chat_id="chat 0").order_by("row_number")
    ]
    assert turns == [1, 2, 3, 4]
    # The batch ends as soon as its rows have; its task once the worker has nothing left.
    assert wait_until(lambda: DBTaskResult.objects.filter(status="SUCCESSFUL").exists())


def test_a_killed_worker_s_batch_is_finished_by_a_restarted_worker_each_item_once(
    alice, start_worker
):
    chats = "abcd"
    rows = [(f"q{n}", chats[n % 4]) for n in range(40)]
    batch = make_batch(alice, rows, options={"delay": 0.1})
    first = start_worker(BATCH_CONCURRENCY=2)
    wait_until(
        lambda: batch.interactions.filter(status=InteractionStatus.SUCCEEDED).count() >= 6,
        message="a few items done",
    )

    first.kill()
    before = {
        i.pk: (i.finished_at, i.output)
        for i in batch.interactions.filter(status=InteractionStatus.SUCCEEDED)
    }
    running = set(batch.interactions.filter(status="running").values_list("pk", flat=True))
    assert Batch.objects.get(pk=batch.pk).status == BatchStatus.PROCESSING
    assert DBTaskResult.objects.filter(status="RUNNING").count() == 1

    start_worker(BATCH_CONCURRENCY=2, BATCH_STALE_AFTER=2)
    done = wait_until(lambda: finished(batch.pk), message="batch end after restart")

    assert (done.status, done.processed_items, done.failed_items) == ("processed", 40, 0)
    items = {i.pk: i for i in Interaction.objects.filter(batch=batch)}
    assert all(i.status == InteractionStatus.SUCCEEDED for i in items.values())
    for pk, (finished_at, output) in before.items():  # never run again
        assert (items[pk].finished_at, items[pk].output, items[pk].attempts) == (
            finished_at,
            output,
            1,
        )
    for pk, item in items.items():  # run once, or twice when the kill interrupted it
        assert item.attempts == (2 if pk in running else 1)
    for chat in chats:  # none skipped: every conversation's turns follow each other
        turns = [
            i.output["turn"]
            for i in sorted(items.values(), key=lambda i: i.row_number)
            if i.chat_id == chat
        ]
        assert turns == list(range(1, 11))
    # The killed worker's task, RUNNING forever in django-tasks-db, is marked lost.
    lost = wait_until(
        lambda: DBTaskResult.objects.filter(status="FAILED").first(), message="lost task"
    )
    assert lost.exception_class_path.endswith("WorkerLost")
    assert wait_until(lambda: not DBTaskResult.objects.filter(status="RUNNING").exists())


def test_two_workers_share_one_batch_without_running_an_item_twice(alice, start_worker):
    rows = [(f"q{n}", "") for n in range(40)]  # 4 s of work for one worker alone
    batch = make_batch(alice, rows, options={"delay": 0.2})
    start_worker(BATCH_CONCURRENCY=2)
    start_worker(BATCH_CONCURRENCY=2)

    done = wait_until(lambda: finished(batch.pk), message="batch end")

    assert (done.status, done.processed_items) == ("processed", 40)
    assert set(batch.interactions.values_list("attempts", flat=True)) == {1}
    tasks = {
        claim.split("/")[0] for claim in batch.interactions.values_list("claimed_by", flat=True)
    }
    workers = DBTaskResult.objects.filter(pk__in=tasks).values_list("worker_ids", flat=True)
    assert len({ids[-1] for ids in workers}) == 2


def test_a_stopped_worker_ends_its_rows_and_leaves_the_rest_to_the_next_one(alice, start_worker):
    rows = [(f"q{n}", "ab"[n % 2]) for n in range(30)]
    batch = make_batch(alice, rows, options={"delay": 0.1})
    first = start_worker(BATCH_CONCURRENCY=2)
    wait_until(
        lambda: batch.interactions.filter(status=InteractionStatus.SUCCEEDED).count() >= 4,
        message="a few items done",
    )

    first.process.terminate()  # SIGTERM: the batch does not hold the worker back
    assert first.process.wait(15) == 0
    assert not batch.interactions.filter(status="running").exists()
    assert batch.interactions.filter(status="pending").exists()

    start_worker(BATCH_CONCURRENCY=2)  # default BATCH_STALE_AFTER: no recovery needed
    done = wait_until(lambda: finished(batch.pk), message="batch end after restart")
    assert (done.status, done.processed_items) == ("processed", 30)
    assert set(batch.interactions.values_list("attempts", flat=True)) == {1}


def test_the_http_processor_gets_each_conversation_s_history_from_a_worker(
    alice, start_worker, settings
):
    from tests.support.stubs import Stub

    stub = Stub()
    settings.BATCH_HTTP_URL = f"{stub.url}/answer"
    try:
        batch = make_batch(
            alice, [("one", "a"), ("solo", ""), ("two", "a")], processor="http", options={"k": 1}
        )
        start_worker(BATCH_HTTP_URL=f"{stub.url}/answer", BATCH_CONCURRENCY=1)
        done = wait_until(lambda: finished(batch.pk), message="batch end")
    finally:
        stub.stop()

    assert done.status == "processed"
    sent = {r["json"]["input"]["question"]: r["json"] for r in stub.requests}
    assert sent["one"]["history"] == [] and sent["solo"]["history"] == []
    assert sent["two"]["history"] == [
        {"input": {"question": "one", "chat_id": "a"}, "output": {"text": "stub answer"}}
    ]
    assert sent["two"]["options"] == {"k": 1}


def test_cancelling_a_running_batch_stops_it_before_the_next_items(api, alice, start_worker):
    batch = make_batch(alice, [(f"q{n}", "one chat") for n in range(20)], options={"delay": 0.2})
    start_worker(BATCH_CONCURRENCY=1)
    wait_until(
        lambda: batch.interactions.filter(status=InteractionStatus.SUCCEEDED).exists(),
        message="first item done",
    )

    response = api.post(f"/api/v1/batches/{batch.pk}/cancel")

    assert response.status_code == 200
    left = response.json()["cancelled_items"]
    assert 0 < left < 20
    done = wait_until(lambda: finished(batch.pk), message="cancelled once none runs")
    assert done.status == "cancelled"
    assert done.cancelled_items == left
    # Exact: an item that ended while the batch was cancelling is counted once.
    assert done.processed_items == batch.interactions.filter(status="succeeded").count()
    assert done.processed_items + done.cancelled_items == 20
    assert not batch.interactions.filter(status="cancelled", started_at__isnull=False).exists()
    assert api.post(f"/api/v1/batches/{batch.pk}/cancel").status_code == 409


def test_a_batch_whose_provider_cannot_be_reached_says_so_in_one_sentence(
    alice, settings, start_worker
):
    settings.OPENAI_BASE_URL = closed_port_url()  # the upload checks it is configured
    rows = [(f"q{n}", "") for n in range(3)] + [("follow-up", "c"), ("again", "c")]
    batch = make_batch(alice, rows, processor="openai")
    start_worker(OPENAI_BASE_URL=closed_port_url(), OPENAI_API_KEY="", BATCH_PROCESSOR_RETRIES=0)

    done = wait_until(lambda: finished(batch.pk), message="batch end")

    assert (done.status, done.failed_items) == ("failed", 5)
    assert done.error == (
        "All 5 items failed with the same error (is OPENAI_BASE_URL right, and its server "
        "up?): openai processor: could not connect."
    )
