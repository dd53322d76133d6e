"""Retention of the OpenAI-compatible surface's result files: those of a batch the
purge deletes (RETAIN_BATCHES_DAYS) leave the storage with their rows, before the
batch itself goes (batches.retention). Uploaded input files are their owner's, kept
until the owner deletes them."""

from collections.abc import Iterator
from datetime import datetime

from django.db import transaction

from batches.retention import SETTING, expired_batches
from batchsvc.ops.retention import ChunkSize, Purger, register
from openai_api.files import storage
from openai_api.models import File


def expired_results(before: datetime):
    return File.objects.filter(batch__in=expired_batches(before))


def results_delete(before: datetime, size: ChunkSize) -> Iterator[int]:
    while True:
        with transaction.atomic():
            rows = list(expired_results(before).values_list("pk", "storage_name")[: size.value])
            File.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
            for _, name in rows:
                if name:
                    transaction.on_commit(lambda name=name: storage().delete(name))
        if not rows:
            return
        yield len(rows)


register(
    Purger(
        name="OpenAI result files",
        setting=SETTING,
        count=lambda before: expired_results(before).count(),
        chunks=results_delete,
        order=15,
    )
)
