import itertools
import os
import uuid

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.support.files import files_storage  # noqa: F401 (fixture)
from tests.support.s3 import s3_server  # noqa: F401 (fixture)
from tests.support.stubs import Stub
from tests.support.workers import Worker

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """A test database of this run's own: runs started side by side in one checkout
    (a developer's and an editor's, say) would otherwise share and break one."""
    from pytest_django.fixtures import _set_suffix_to_test_databases

    run = os.environ.get("PYTEST_XDIST_TESTRUNUID", "")[:8] or str(os.getpid())
    _set_suffix_to_test_databases(suffix=f"run{run}")


@pytest.fixture(autouse=True)
def _no_throttling(settings):
    # Throttling is tested on its own; elsewhere it would only add flakiness.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"batch": None},
    }


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-password")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-password")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser("staff", password="staff-password")


@pytest.fixture
def token(alice):
    return Token.objects.create(user=alice).key


@pytest.fixture
def api(alice, token):
    """An API client authenticated as alice with her token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def connection_vendor():
    return connection.vendor


@pytest.fixture
def anonymous():
    return APIClient()


def make_run(**overrides) -> dict:
    """A realistic run as an agent would send it (~0.5 KB)."""
    n = next(_numbers)
    run = {
        "event_id": str(uuid.uuid4()),
        "run_id": f"run-{uuid.uuid4().hex[:12]}-{n}",
        "agent_name": "launch.orchestrator",
        "job_type": "launch",
        "product": "words",
        "git_repo": "https://example.com/org/repo.git",
        "git_branch": "main",
        "git_commit": "3f2c1e0",
        "status": "running",
        "start_time": "2026-01-28T10:30:00Z",
        "metrics_json": {"pages": n, "tokens": {"in": 1200, "out": 340}, "ratio": 0.25},
        "context_json": {"trace_id": uuid.uuid4().hex, "tags": ["a", "b"], "nested": {"x": None}},
    }
    run.update(overrides)
    return run


@pytest.fixture
def run_factory():
    return make_run


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL)")
    for item in items:
        if "postgres_only" in item.keywords and connection.vendor != "postgresql":
            item.add_marker(skip_pg)


@pytest.fixture
def trace_root(settings, tmp_path):
    """A fresh root for the ``traces`` storage, inside ``tmp_path`` so that a test
    can list everything around it and prove nothing was written outside."""
    root = tmp_path / "traces"
    settings.STORAGES = {
        **settings.STORAGES,
        "traces": {**settings.STORAGES["traces"], "OPTIONS": {"location": str(root)}},
    }
    return root


@pytest.fixture
def alice_root(trace_root, alice):
    """Where alice's trace files land: her namespace under the storage root."""
    return trace_root / "owners" / str(alice.pk)


def error_body(response) -> dict:
    """An error body without its ``request_id``, which must be the response's own."""
    body = response.json()
    assert body.pop("request_id") == response["X-Request-ID"]
    return body


@pytest.fixture
def stub():
    server = Stub()
    yield server
    server.stop()


@pytest.fixture
def elsewhere():
    """A server that nothing may reach: where an upload would like to send requests."""
    server = Stub()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fast_retries(settings):
    settings.BATCH_PROCESSOR_RETRIES = 3
    settings.BATCH_PROCESSOR_BACKOFF_MS = 1
    settings.BATCH_PROCESSOR_TIMEOUT = 5


@pytest.fixture
def start_worker(transactional_db):
    """``start_worker(*args, **env)``: a db_worker process (``args`` added to its command
    line, ``env`` to its environment), stopped after the test."""
    workers = []

    def start(*args, **env):
        workers.append(Worker(**env).start(*args))
        return workers[-1]

    yield start
    for worker in workers:
        worker.stop()
