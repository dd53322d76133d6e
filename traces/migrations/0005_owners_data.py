"""Give every existing run and trace file an owner, and move each trace file into
its owner's namespace in the storage.

The owner is the user named by the MIGRATE_OWNER setting when it is set, else the
oldest superuser. Moving a file is idempotent (a file already at its new name is
left alone), so a migration interrupted half-way can simply be run again.
"""

import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, storages
from django.db import migrations
from django.db.models import F

BATCH = 1000


def _legacy_owner(apps):
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    if settings.MIGRATE_OWNER:
        owner = User.objects.filter(username=settings.MIGRATE_OWNER).first()
        if owner is None:
            raise ImproperlyConfigured(
                f"MIGRATE_OWNER names {settings.MIGRATE_OWNER!r}, and there is no such user."
            )
        return owner
    owner = User.objects.filter(is_superuser=True).order_by("date_joined", "pk").first()
    if owner is None:
        raise ImproperlyConfigured(
            "Existing runs and trace files need an owner: create a superuser "
            "(manage.py createsuperuser) or set MIGRATE_OWNER to a username, then migrate again."
        )
    return owner


def _move(storage, source: str, target: str) -> None:
    if source == target or not storage.exists(source) or storage.exists(target):
        return
    if isinstance(storage, FileSystemStorage):
        destination = storage.path(target)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        os.replace(storage.path(source), destination)
    else:
        with storage.open(source, "rb") as stream:
            storage.save(target, stream)
        storage.delete(source)


def assign_owners(apps, schema_editor):
    Run = apps.get_model("traces", "Run")
    TraceFile = apps.get_model("traces", "TraceFile")
    TraceFile.objects.update(run_name=F("run_id"))  # the run link becomes a plain name
    unowned_runs = Run.objects.filter(owner__isnull=True)
    unowned_files = TraceFile.objects.filter(owner__isnull=True)
    if not unowned_runs.exists() and not unowned_files.exists():
        return
    owner = _legacy_owner(apps)
    unowned_runs.update(owner=owner)
    storage = storages["traces"]
    for trace_file in unowned_files.iterator(chunk_size=BATCH):
        trace_file.storage_name = f"owners/{owner.pk}/{trace_file.path}"
        _move(storage, trace_file.path, trace_file.storage_name)
        trace_file.owner = owner
        trace_file.save(update_fields=["owner", "storage_name"])


def move_back(apps, schema_editor):
    """Unapplying puts each file back at its path (the owners stay set)."""
    TraceFile = apps.get_model("traces", "TraceFile")
    storage = storages["traces"]
    for trace_file in TraceFile.objects.exclude(storage_name="").iterator(chunk_size=BATCH):
        _move(storage, trace_file.storage_name, trace_file.path)


class Migration(migrations.Migration):
    dependencies = [("traces", "0004_owners")]

    operations = [migrations.RunPython(assign_owners, move_back)]
