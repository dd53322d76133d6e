import uuid

import pytest
from django.contrib.auth.models import User
from rest_framework import serializers
from rest_framework.test import APIClient

from batchsvc.api import resources
from traces.models import Run


class UserSerializer(serializers.ModelSerializer):
    """A test-only resource: users, each of whom sees only themselves."""

    expensive = serializers.SerializerMethodField()
    computed: list[int] = []  # pks whose `expensive` was computed, to prove selection

    class Meta:
        model = User
        fields = ["id", "username", "is_staff", "expensive"]

    def get_expensive(self, user):
        UserSerializer.computed.append(user.pk)
        return len(user.username)


class RunByEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Run
        fields = ["event_id", "run_id", "status"]


@pytest.fixture
def users_resource():
    """``test_users``: integer ids, scoped so that each user sees only themselves."""
    UserSerializer.computed = []
    resource = resources.register(
        "test_users",
        serializer_class=UserSerializer,
        visible_to=lambda user: User.objects.filter(pk=user.pk),
    )
    yield resource
    resources.unregister("test_users")


@pytest.fixture
def runs_by_event_resource():
    """``test_runs_by_event``: UUID ids, like a UUID primary key."""
    resource = resources.register(
        "test_runs_by_event",
        serializer_class=RunByEventSerializer,
        visible_to=lambda user: Run.objects.all(),
        lookup_field="event_id",
        id_type=uuid.UUID,
    )
    yield resource
    resources.unregister("test_runs_by_event")


@pytest.fixture
def alice_session(alice):
    """An API client logged in as alice without a token, so that counted queries
    are the endpoint's own."""
    client = APIClient()
    client.force_authenticate(alice)
    return client


@pytest.fixture
def stored_runs(api, run_factory):
    """Store ``n`` runs through the API; return their bodies in order."""

    def store(n: int) -> list[dict]:
        runs = [run_factory() for _ in range(n)]
        assert api.post("/api/v1/runs/batch", {"runs": runs}, format="json").status_code == 201
        return runs

    return store
