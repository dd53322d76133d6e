"""The migration that gives existing runs and trace files an owner."""

import datetime as dt
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.support.migrations import LATEST, migrate
from traces.models import Run, TraceFile

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("traces", "0003_trace_file_run_without_constraint")]
AFTER = [("traces", "0006_owners_constraints")]


@pytest.fixture
def legacy(trace_root):
    """Runs and a trace file (on disk at its bare path) as the schema before owners."""
    apps = migrate(BEFORE)
    OldRun = apps.get_model("traces", "Run")
    OldTraceFile = apps.get_model("traces", "TraceFile")
    now = timezone.now()
    OldRun.objects.create(
        event_id=uuid.uuid4(), run_id="old-run", agent_name="a", job_type="j", start_time=now
    )
    (trace_root / "nightly").mkdir(parents=True)
    (trace_root / "nightly" / "trace.json").write_text('{"old": true}')
    OldTraceFile.objects.create(path="nightly/trace.json", size=13, sha256="x", run_id="old-run")
    yield
    migrate(LATEST)  # whatever the test did, leave the schema as the other tests expect it


def superuser(django_user_model, name, days_ago):
    user = django_user_model.objects.create_superuser(name, password="x")
    user.date_joined = timezone.now() - dt.timedelta(days=days_ago)
    user.save()
    return user


def test_existing_data_goes_to_the_oldest_superuser_and_its_files_stay_readable(
    legacy, django_user_model, trace_root
):
    superuser(django_user_model, "newer", days_ago=1)
    oldest = superuser(django_user_model, "oldest", days_ago=30)
    migrate(AFTER)

    assert Run.objects.get(run_id="old-run").owner == oldest
    trace_file = TraceFile.objects.get()
    assert (trace_file.owner, trace_file.run_id) == (oldest, "old-run")
    assert trace_file.storage_name == f"owners/{oldest.pk}/nightly/trace.json"
    assert not (trace_root / "nightly" / "trace.json").exists()  # moved into the namespace
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=oldest).key}")
    content = api.get(f"/api/v1/traces/{trace_file.pk}/content")
    assert b"".join(content.streaming_content) == b'{"old": true}'
    assert api.get("/api/v1/runs/old-run/").json()["owner"] == "oldest"


def test_the_migrate_owner_setting_names_the_owner(legacy, django_user_model, settings):
    superuser(django_user_model, "root", days_ago=30)
    agent = django_user_model.objects.create_user("agent")
    settings.MIGRATE_OWNER = "agent"
    migrate(AFTER)
    assert Run.objects.get().owner == agent
    assert TraceFile.objects.get().owner == agent


def test_without_an_owner_to_give_the_migration_stops_and_says_what_to_do(
    legacy, settings, django_user_model
):
    with pytest.raises(ImproperlyConfigured, match=r"create a superuser .* or set MIGRATE_OWNER"):
        migrate(AFTER)
    settings.MIGRATE_OWNER = "nobody"
    with pytest.raises(ImproperlyConfigured, match="MIGRATE_OWNER names 'nobody'"):
        migrate(AFTER)
    # Done as the sentence says, the migration runs again and finishes.
    settings.MIGRATE_OWNER = ""
    root = superuser(django_user_model, "root", days_ago=1)
    migrate(AFTER)
    assert Run.objects.get().owner == root
