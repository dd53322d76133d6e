"""batches.engine.counters.Progress.transaction: the write transaction a run's threads
end their rows in (one shared connection on SQLite, each thread's own elsewhere)."""

import threading

import pytest
from django.db import DatabaseError, connection

from batches.engine.counters import Progress
from batches.models import Batch, BatchStatus

pytestmark = pytest.mark.django_db(transaction=True)


def rename(cursor, pk, name: str) -> None:
    """The batch renamed through ``cursor`` (SQLite's own takes ? for parameters)."""
    statement = "UPDATE batches_batch SET name = %s WHERE id = %s"
    if connection.vendor == "sqlite":
        statement = statement.replace("%s", "?")
    cursor.execute(statement, [name, Batch._meta.pk.get_db_prep_value(pk, connection)])


def named(progress: Progress, pk, name: str) -> None:
    with progress.transaction() as cursor:
        rename(cursor, pk, name)


@pytest.fixture
def batch():
    return Batch.objects.create(processor="echo", status=BatchStatus.PROCESSING)


def test_a_transaction_is_committed_and_seen_by_every_connection(batch):
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


def test_a_block_that_raises_writes_nothing_and_the_next_one_writes(batch):
    progress = Progress(announced=batch.pk)
    with pytest.raises(KeyError), progress.transaction() as cursor:
        rename(cursor, batch.pk, "half.csv")
        raise KeyError("the block failed after its update")
    assert Batch.objects.get(pk=batch.pk).name != "half.csv"

    named(progress, batch.pk, "whole.csv")
    progress.close()
    assert Batch.objects.get(pk=batch.pk).name == "whole.csv"


def test_a_database_error_reaches_the_caller_as_djangos_and_the_next_block_writes(batch):
    progress = Progress(announced=batch.pk)
    with pytest.raises(DatabaseError), progress.transaction() as cursor:
        cursor.execute("UPDATE no_such_table SET x = 1")
    named(progress, batch.pk, "after.csv")
    progress.close()
    assert Batch.objects.get(pk=batch.pk).name == "after.csv"


@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_on_sqlite_the_threads_write_through_one_connection(batch):
    progress = Progress(announced=batch.pk)
    used = set()

    def write(n):
        with progress.transaction() as cursor:
            used.add(id(cursor.connection))
        connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    progress.close()
    assert len(used) == 1
