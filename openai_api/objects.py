"""Our files and batches as OpenAI's objects (the openai SDK's FileObject and Batch)."""

from datetime import datetime

from batches.models import Batch
from openai_api import ids
from openai_api.models import File
from openai_api.results import file_size
from openai_api.selectors import CANCELLED, batch_state


def unix(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def file_object(file: File) -> dict:
    return {
        "id": file.openai_id,
        "object": "file",
        "bytes": file_size(file),
        "created_at": unix(file.created_at),
        "filename": file.filename,
        "purpose": file.purpose,
        "status": "processed",
        "expires_at": unix(file.expires_at),
        "status_details": None,
    }


def batch_object(batch: Batch) -> dict:
    link = batch.openai
    state = batch_state(batch)
    status, ended = state.status, batch.finished_at
    completed, failed = state.counts["completed"], state.counts["failed"]
    # A running batch's files hold what has ended so far; an ended one's, if any line.
    running = state.settled is None
    return {
        "id": ids.batch_id(batch.pk),
        "object": "batch",
        "endpoint": link.endpoint,
        "model": link.model or None,
        "errors": errors(batch) if status == "failed" else None,
        "input_file_id": ids.file_id(link.input_file_uuid),
        "completion_window": link.completion_window,
        "status": status,
        "output_file_id": ids.file_id(link.output_file_id) if running or completed else None,
        "error_file_id": ids.file_id(link.error_file_id) if running or failed else None,
        "created_at": unix(batch.created_at),
        "in_progress_at": unix(batch.started_at),
        "expires_at": unix(link.expires_at),
        "finalizing_at": unix(ended) if status in ("completed", "expired") else None,
        "completed_at": unix(ended) if status == "completed" else None,
        "failed_at": unix(ended) if status == "failed" else None,
        "expired_at": unix(ended) if status == "expired" else None,
        "cancelling_at": unix(cancelling_at(batch)) if status in CANCELLED else None,
        # The last change of a cancelled batch is its last running line's end.
        "cancelled_at": unix(batch.updated_at) if status == "cancelled" else None,
        "request_counts": {"total": batch.total_items, "completed": completed, "failed": failed},
        "usage": usage(state.usage),
        "metadata": link.metadata,
    }


def cancelling_at(batch: Batch) -> datetime:
    """When the cancel was asked for: kept by this surface's cancel; a cancel from the
    rest of the API or the admin is dated by the batch's own record of it."""
    return batch.openai.cancel_requested_at or batch.finished_at or batch.updated_at


def errors(batch: Batch) -> dict:
    error = {"code": "processor_unavailable", "message": batch.error, "param": None, "line": None}
    return {"object": "list", "data": [error]}


def usage(tokens: dict) -> dict:
    # Cached and reasoning tokens are not kept per line: reported as none.
    return {
        "input_tokens": tokens.get("prompt_tokens", 0),
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": tokens.get("completion_tokens", 0),
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": tokens.get("total_tokens", 0),
    }


def page(objects: list[dict], *, has_more: bool) -> dict:
    return {
        "object": "list",
        "data": objects,
        "first_id": objects[0]["id"] if objects else None,
        "last_id": objects[-1]["id"] if objects else None,
        "has_more": has_more,
    }
