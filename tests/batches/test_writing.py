"""How a run's threads end their rows: batches.engine.sql.end_and_start through the
cursor of Progress.ending (one shared connection on SQLite, each thread's own
elsewhere)."""

import threading

import pytest
from django.db import DatabaseError, connection

from batches.engine import sql
from batches.engine.counters import Progress
from batches.models import Batch, BatchStatus, Interaction, InteractionStatus
from tests.batches.factories import make_batch

pytestmark = pytest.mark.django_db(transaction=True)


def rename(cursor, pk, name: str) -> None:
    """The batch renamed through ``cursor`` (SQLite's own takes ? for parameters)."""
    statement = "UPDATE batches_batch SET name = %s WHERE id = %s"
    if connection.vendor == "sqlite":
        statement = statement.replace("%s", "?")
    cursor.execute(statement, [name, Batch._meta.pk.get_db_prep_value(pk, connection)])


def named(progress: Progress, pk, name: str) -> None:
    with progress.ending() as cursor:
        rename(cursor, pk, name)


@pytest.fixture
def batch():
    return Batch.objects.create(processor="echo", status=BatchStatus.PROCESSING)


def test_what_a_block_writes_is_committed_and_seen_by_every_connection(batch):
    progress = Progress(announced=batch.pk)
    seen = []

    def write_then_read(n):
        named(progress, batch.pk, f"thread-{n}.csv")
        seen.append(Batch.objects.get(pk=batch.pk).name)  # its own connection
        connection.close()

    threads = [threading.Thread(target=write_then_read, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    progress.close()

    assert len(seen) == 4 and all(name.startswith("thread-") for name in seen)
    assert Batch.objects.get(pk=batch.pk).name in seen


@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_on_sqlite_a_block_that_raises_writes_nothing_and_the_next_one_writes(batch):
    progress = Progress(announced=batch.pk)
    with pytest.raises(KeyError), progress.ending() as cursor:
        rename(cursor, batch.pk, "half.csv")
        raise KeyError("the block failed after its update")
    assert Batch.objects.get(pk=batch.pk).name != "half.csv"

    named(progress, batch.pk, "whole.csv")
    progress.close()
    assert Batch.objects.get(pk=batch.pk).name == "whole.csv"


def test_a_database_error_reaches_the_caller_as_djangos_and_the_next_block_writes(batch):
    progress = Progress(announced=batch.pk)
    with pytest.raises(DatabaseError), progress.ending() as cursor:
        cursor.execute("UPDATE no_such_table SET x = 1")
    named(progress, batch.pk, "after.csv")
    progress.close()
    assert Batch.objects.get(pk=batch.pk).name == "after.csv"


@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_on_sqlite_the_threads_write_through_one_connection(batch):
    progress = Progress(announced=batch.pk)
    used = set()

    def write(n):
        with progress.ending() as cursor:
            used.add(id(cursor.connection))
        connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    progress.close()
    assert len(used) == 1


@pytest.fixture
def two_rows(alice):
    """A batch's first row running as worker/0, its second pending."""
    batch = make_batch(alice, [("one", "a"), ("two", "a")])
    first, second = batch.interactions.order_by("row_number")
    now = connection.ops.adapt_datetimefield_value(batch.created_at)
    with connection.cursor() as cursor:
        cursor.execute(sql.sql(sql.START), ["worker/0", now, now, first.pk, "pending"])
    return batch, first, second, now


def end_and_start(progress, first, second, now, *, token="worker/0"):
    ended = ["succeeded", '{"text": "ok"}', "", "", now, None, None, None]
    with progress.ending() as cursor:
        return sql.end_and_start(
            cursor,
            [*ended, first.pk, token, "running"],
            [token, now, now, second.pk, "pending"],
        )


def statuses(batch) -> list[tuple[str, str]]:
    rows = Interaction.objects.filter(batch=batch).order_by("row_number")
    return list(rows.values_list("status", "claimed_by"))


def test_a_row_ends_and_the_next_starts_under_the_same_token(two_rows):
    batch, first, second, now = two_rows
    progress = Progress(announced=batch.pk)
    assert end_and_start(progress, first, second, now) == (True, True)
    progress.close()
    assert statuses(batch) == [("succeeded", "worker/0"), ("running", "worker/0")]


def test_a_row_another_thread_holds_is_not_ended_and_the_next_is_not_started(two_rows):
    batch, first, second, now = two_rows
    progress = Progress(announced=batch.pk)
    assert end_and_start(progress, first, second, now, token="worker/9") == (False, False)
    progress.close()
    assert statuses(batch) == [("running", "worker/0"), ("pending", "")]


def test_a_next_row_cancelled_meanwhile_is_not_started(two_rows):
    batch, first, second, now = two_rows
    Interaction.objects.filter(pk=second.pk).update(status=InteractionStatus.CANCELLED)
    progress = Progress(announced=batch.pk)
    assert end_and_start(progress, first, second, now) == (True, False)
    progress.close()
    assert statuses(batch) == [("succeeded", "worker/0"), ("cancelled", "")]
