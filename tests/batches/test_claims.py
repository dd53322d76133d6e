"""batches.engine.claims: a run's threads claiming conversations (real database)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batches.engine.claims import WAIT, Claim, Claims
from batches.engine.counters import Progress
from tests.batches.factories import make_batch

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_run_whose_own_threads_fill_a_batch_waits_without_writing_to_the_database(alice):
    batch = make_batch(alice, [(f"q{n}", "") for n in range(5)], concurrency=2)
    claims = Claims(Progress(announced=batch.pk))
    claims.checked(batch.pk, True)
    assert isinstance(claims.claim("worker/0"), Claim)
    assert isinstance(claims.claim("worker/1"), Claim)

    with CaptureQueriesContext(connection) as queries:
        answer = claims.claim("worker/2")

    assert answer == WAIT
    # No claim transaction (it stamps the batch first): idle threads look often.
    assert [q["sql"] for q in queries.captured_queries if not q["sql"].startswith("SELECT")] == []
