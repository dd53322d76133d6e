import pytest

from tests.support.receivers import Receiver


@pytest.fixture
def receiver():
    """A receiver on 127.0.0.1 that verifies signatures (give it secrets) and accepts."""
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture
def allow_private(settings):
    """Endpoints on 127.0.0.1, where the tests' receivers listen, are let through."""
    settings.WEBHOOKS_ALLOW_PRIVATE = True


@pytest.fixture
def fast_backoff(settings):
    settings.WEBHOOKS_BACKOFF_MS = 1
    settings.WEBHOOKS_BACKOFF_MAX = 1
