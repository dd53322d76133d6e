"""Overlapping trace batches sent at the same time by real threads to a real server."""

import hashlib
import random
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from traces.models import TraceFile

pytestmark = pytest.mark.django_db(transaction=True)


def test_concurrent_batches_rewriting_the_same_paths_leave_one_matching_row_and_file_each(
    live_server, token, alice_root
):
    names = [f"t{i}.txt" for i in range(15)]
    rng = random.Random(3)
    batches = [rng.sample(names, 10) for _ in range(8)]

    def send(i):
        files = [
            {"trace_data": f"batch {i} wrote {name}\n" * 500, "file_name": name}
            for name in batches[i]
        ]
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            response = http.post(
                "/api/v1/traces/write-batch",
                json={"files": files},
                headers={"Authorization": f"Token {token}"},
            )
        return response.status_code, response.json()

    with ThreadPoolExecutor(max_workers=4) as executor:
        answers = list(executor.map(send, range(len(batches))))

    assert [status for status, _ in answers] == [200] * len(batches)
    assert all(body["summary"]["failed"] == 0 for _, body in answers)
    sent = {name for batch in batches for name in batch}
    assert sorted(TraceFile.objects.values_list("path", flat=True)) == sorted(sent)
    assert sorted(p.name for p in alice_root.iterdir()) == sorted(sent)  # no temporary files
    rows = {row.path: row for row in TraceFile.objects.all()}
    for name in sent:
        content = (alice_root / name).read_bytes()
        lines = set(content.decode().splitlines())
        assert len(lines) == 1  # one writer's whole version, never a mix
        assert lines.pop().endswith(f"wrote {name}")
        # The row describes the version on disk: the last rename and the last
        # upsert of a path belong to the same request.
        assert rows[name].sha256 == hashlib.sha256(content).hexdigest()
