"""Uploads, batches and a real worker process for the batches tests."""

import csv
import io
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile
from openpyxl import Workbook

from batches.models import UNENDED_BATCH, Batch

ROOT = Path(__file__).resolve().parents[2]


def csv_bytes(rows, header=("question", "chat_id")) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def csv_upload(rows, header=("question", "chat_id"), name="questions.csv"):
    return SimpleUploadedFile(name, csv_bytes(rows, header), content_type="text/csv")


def xlsx_bytes(rows, header=("question", "chat_id")) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def post_batch(api, upload, headers=None, query="", **fields):
    return api.post(
        f"/api/v1/batches/{query}",
        {"file": upload, **fields},
        format="multipart",
        **(headers or {}),
    )


def make_batch(owner, rows, header=("question", "chat_id"), **kwargs) -> Batch:
    """A batch created through the service, as the API would (its task is not run)."""
    from batches.services import batch_create

    return batch_create(owner=owner, upload=csv_upload(rows, header), **kwargs).batch


def finished(batch_id):
    batch = Batch.objects.get(pk=batch_id)
    return batch if batch.status not in UNENDED_BATCH else None
