import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from setuplogs.models import LogEntry, LogLevel

pytestmark = pytest.mark.django_db


def constraints():
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, LogEntry._meta.db_table)
    return list(found.values())


def test_lines_after_a_seq_of_a_run_have_an_index_starting_with_run_and_seq():
    # SQLite and PostgreSQL both enforce a unique constraint through an index.
    assert any(c["columns"] == ["run_id", "seq"] and c["unique"] for c in constraints())


def entry(run, seq, client_id=""):
    now = timezone.now()
    return LogEntry(
        run=run, seq=seq, timestamp=now, received_at=now, message="m", client_id=client_id
    )


def test_the_database_refuses_a_seq_twice_in_one_run(run):
    entry(run, 1).save()
    with pytest.raises(IntegrityError), transaction.atomic():
        entry(run, 1).save()


def test_the_database_refuses_a_client_id_twice_in_one_run_but_not_an_empty_one(run):
    entry(run, 1, "a").save()
    entry(run, 2).save()
    entry(run, 3).save()
    with pytest.raises(IntegrityError), transaction.atomic():
        entry(run, 4, "a").save()


def test_the_database_refuses_an_unknown_level(run):
    line = entry(run, 1)
    line.level = "loud"
    with pytest.raises(IntegrityError), transaction.atomic():
        line.save()


def test_at_least_lists_a_level_and_the_worse_ones():
    assert LogLevel.at_least("warning") == ["warning", "error", "critical"]


def test_last_lines_of_a_queryset_are_found_in_one_query(run, django_assert_num_queries):
    LogEntry.objects.bulk_create(entry(run, seq) for seq in range(1, 8))
    with django_assert_num_queries(1):
        seqs = list(LogEntry.objects.of_run(run).last_lines(3).values_list("seq", flat=True))
    assert seqs == [5, 6, 7]
