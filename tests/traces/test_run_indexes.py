"""The runs table's indexes on parent_run_id: one plain index, which the children
and ``?parent_run_id=`` queries read, and no second one for LIKE on PostgreSQL."""

import pytest
from django.db import connection

from tests.support.migrations import LATEST, migrate
from traces.models import Run

pytestmark = pytest.mark.django_db(transaction=True)


def indexes_on_parent_run_id() -> list[str]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, Run._meta.db_table)
    return sorted(name for name, c in found.items() if c["columns"] == ["parent_run_id"])


def test_parent_run_id_has_one_plain_index():
    assert indexes_on_parent_run_id() == ["run_parent_run_id"]


def test_the_migration_renames_the_old_index_and_drops_the_like_one_and_goes_back():
    old = "traces_run_parent_run_id_b60bb072"
    try:
        migrate([("traces", "0006_owners_constraints")])
        like = [f"{old}_like"] if connection.vendor == "postgresql" else []
        assert indexes_on_parent_run_id() == [old, *like]
    finally:
        migrate(LATEST)
    assert indexes_on_parent_run_id() == ["run_parent_run_id"]
