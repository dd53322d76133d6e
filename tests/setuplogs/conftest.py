import uuid

import pytest

from traces.models import Run


@pytest.fixture
def run(api, run_factory):
    """A stored run, through the API."""
    body = run_factory()
    assert api.post("/api/v1/runs/", body, format="json").status_code == 201
    return Run.objects.get(run_id=body["run_id"])


def line(message="hello", **fields) -> dict:
    return {"message": message, "level": "info", "client_id": uuid.uuid4().hex, **fields}


def batch_url(run) -> str:
    return f"/api/v1/runs/{run.run_id}/setup_logs"


def single_url(run) -> str:
    return f"/api/v1/runs/{run.run_id}/setup_log"
