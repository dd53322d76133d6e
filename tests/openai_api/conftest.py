import pytest
from rest_framework.authtoken.models import Token

from tests.support.openai_sdk import sdk_client
from tests.support.provider import Provider
from tests.support.workers import Worker


@pytest.fixture
def provider(settings):
    """The stub provider, where the server's OPENAI_BASE_URL points."""
    server = Provider()
    settings.OPENAI_BASE_URL = f"{server.url}/v1"
    yield server
    server.stop()


@pytest.fixture
def sdk(live_server, alice, trace_root, provider):
    """The openai SDK as alice against the live server."""
    with sdk_client(live_server, Token.objects.create(user=alice).key) as client:
        yield client


@pytest.fixture
def sdk_bob(live_server, bob, trace_root):
    with sdk_client(live_server, Token.objects.create(user=bob).key) as client:
        yield client


@pytest.fixture
def start_worker(transactional_db, provider):
    """``start_worker(**env)``: a db_worker process calling the stub provider, stopped
    after the test."""
    workers = []

    def start(**env):
        worker = Worker(OPENAI_BASE_URL=f"{provider.url}/v1", **env).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
