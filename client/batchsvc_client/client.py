"""The API's resources as methods: runs, batches, setup log lines, batch GET."""

import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from batchsvc_client._http import ApiError, HttpClient, _body, _chunks, _run_path, encode_json

RUNS_PER_REQUEST = 1000  # the server's RUNS_BATCH_MAX by default
IDS_PER_REQUEST = 100  # the server's BATCH_GET_MAX_IDS by default
ACTIVE = ("queued", "processing")


class TransactionTooLarge(ValueError):
    """A transactional upload that does not fit in one request: refused before
    anything is sent, since the server can roll back one request only."""


class Client(HttpClient):
    """A batchsvc API client (see :class:`~batchsvc_client._http.HttpClient` for
    its retries, timeouts and compression). Acts as its token's user."""

    # Runs ---------------------------------------------------------------

    def upload_runs(
        self,
        runs: Iterable[dict],
        transactional: bool = False,
        chunk_size: int = RUNS_PER_REQUEST,
        *,
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        """Upload runs in requests of ``chunk_size``; return the summed outcome:
        ``{"total", "created", "existing", "failed", "errors", "rolled_back"}``, the
        errors' indexes being positions in ``runs``.

        Every run carries its event_id, so a chunk retried after a lost answer is
        stored once (its runs come back ``existing``). ``transactional`` uploads are
        all or nothing, which the server can promise for one request only: more than
        ``chunk_size`` runs raise :class:`TransactionTooLarge` before any is sent; a
        refused one stores nothing and answers ``rolled_back`` True with every
        failure in ``errors``. ``dry_run`` validates and counts, storing nothing.
        ``progress(n)`` is called after each request with the runs it carried.
        """
        if transactional:
            runs = _one_request(runs, chunk_size)
        path = "/api/v1/runs/batch-transactional" if transactional else "/api/v1/runs/batch"
        params = {"errors_only": "true", **({"dry_run": "true"} if dry_run else {})}
        ok = (200, 201, 400) if transactional else (200, 201)
        summary = {"total": 0, "created": 0, "existing": 0, "failed": 0, "errors": []}
        summary["rolled_back"] = False
        for chunk in _chunks(runs, chunk_size):
            body = self.json("POST", path, json={"runs": chunk}, ok=ok, params=params)
            if "total" not in body:  # a 400 about the request itself, not its runs
                raise ApiError(400, body)
            offset = summary["total"]
            for name in ("total", "created", "existing", "failed"):
                summary[name] += body[name]
            summary["errors"] += [{**e, "index": offset + e["index"]} for e in body["errors"]]
            summary["rolled_back"] = bool(body.get("rolled_back"))
            if progress is not None:
                progress(len(chunk))
        return summary

    def run(self, run_id: str, *, fields: Iterable[str] | None = None) -> dict[str, Any]:
        """One run by its run_id (``fields``: only those)."""
        params = {"fields": ",".join(fields)} if fields else None
        return self.json("GET", f"/api/v1/runs/{quote(run_id, safe='')}", params=params)

    # Batches ------------------------------------------------------------

    def upload_batch(
        self,
        path: str | os.PathLike,
        *,
        name: str = "",
        processor: str = "echo",
        options: dict | None = None,
        idempotency_key: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Upload a .csv or .xlsx file as a batch: ``{"batch_id", "status",
        "total_items", "skipped_count", "skipped_rows"}`` (or the file's summary with
        ``dry_run``).

        The upload carries an Idempotency-Key (a new one unless given), so a retry
        after a lost answer gets the same batch, never a second one.
        """
        path = Path(path)
        data = {"processor": processor, "name": name or path.name}
        if options is not None:
            data["options"] = encode_json(options).decode()
        headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        return self.json(
            "POST",
            "/api/v1/batches/",
            ok=(200, 202),
            params={"dry_run": "true"} if dry_run else None,
            data=data,
            files={"file": (path.name, path.read_bytes())},
            headers=headers,
        )

    def batch(self, batch_id: str) -> dict[str, Any]:
        """The batch's fields: its status, ``progress`` (0-100, the items that ran) and
        ``ended_progress`` (0-100, the cancelled ones too)."""
        return self.json("GET", f"/api/v1/batches/{batch_id}/")

    def batches(self, **filters) -> Iterator[dict[str, Any]]:
        """The batches the user may see, newest first, fetched page by page.
        ``filters``: status, processor, ordering, page_size, fields."""
        return self._pages("/api/v1/batches/", filters)

    def interactions(self, batch_id: str, **filters) -> Iterator[dict[str, Any]]:
        """A batch's items in row order, with their ``input`` (the row's columns),
        status and error. ``filters``: status, chat_id, page_size."""
        return self._pages(f"/api/v1/batches/{batch_id}/interactions", filters)

    def wait_for_batch(
        self,
        batch_id: str,
        *,
        poll: float = 1.0,
        timeout: float | None = None,
        progress: Callable[[dict], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the batch has ended; return it. ``progress(batch)`` is called
        after each look; TimeoutError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            batch = self.batch(batch_id)
            if progress is not None:
                progress(batch)
            if batch["status"] not in ACTIVE:
                return batch
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"batch {batch_id} is still {batch['status']}")
            time.sleep(poll)

    def download_results(
        self, batch_id: str, path: str | os.PathLike, *, format: str = "csv"
    ) -> Path:
        """Stream the results file (csv, xlsx or json) to ``path``, written to a
        temporary file beside it and renamed, so ``path`` is never half-written."""
        target = Path(path)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            with open(temporary, "wb") as out:
                self.copy_results(batch_id, out, format=format)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return target

    def copy_results(self, batch_id: str, out: IO[bytes], *, format: str = "csv") -> int:
        """Stream the results file (csv, xlsx or json) to the binary file ``out``;
        return its size in bytes. Nothing is written when the server refuses."""
        url = f"/api/v1/batches/{batch_id}/results"
        response = self.request("GET", url, params={"format": format}, stream=True)
        size = 0
        try:
            if response.status_code != 200:
                response.read()
                raise ApiError(response.status_code, _body(response), response.headers)
            for chunk in response.iter_bytes():
                write_all(out, chunk)
                size += len(chunk)
        finally:
            response.close()
        return size

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        return self.json("POST", f"/api/v1/batches/{batch_id}/cancel", retry=False)

    def retry_failed(self, batch_id: str) -> dict[str, Any]:
        return self.json("POST", f"/api/v1/batches/{batch_id}/retry-failed", ok=(202,), retry=False)

    # Setup logs ---------------------------------------------------------

    def append_log_lines(
        self, run_id: str, lines: list[dict], *, dropped: int = 0, retry: bool = True
    ) -> dict[str, Any]:
        """Append lines to a run in one request; return ``{"logs_added", "duplicates",
        "skipped"}``. A line with a client_id is stored once however often it is sent.
        ``dropped`` reports lines the caller lost; the server records it on the run."""
        body: dict[str, Any] = {"logs": lines}
        if dropped:
            body["dropped"] = dropped
        return self.json("POST", _run_path(run_id, "setup_logs"), json=body, retry=retry)

    def append_log_line(self, run_id: str, line: dict, *, retry: bool = True) -> dict[str, Any]:
        """Append one line; return it as stored (with its seq)."""
        return self.json("POST", _run_path(run_id, "setup_log"), json=line, retry=retry)

    def log_lines(self, run_id: str, *, after: int = 0, **filters) -> Iterator[dict]:
        """A run's lines after seq ``after``, in order, fetched page by page.
        ``filters``: level, min_level, tail, page_size (see the API docs)."""
        return self._pages(_run_path(run_id, "setup_logs"), {"after": after, **filters})

    # Batch GET ----------------------------------------------------------

    def batch_get(
        self,
        resource_type: str,
        ids: Iterable[str | int],
        *,
        fields: Iterable[str] | None = None,
        chunk_size: int = IDS_PER_REQUEST,
    ) -> dict[str, Any]:
        """Several objects of one resource type by id (runs, trace_files,
        log_entries, batches, interactions): a result per id in order, each with its
        ``status`` (success or error), ``status_code``, ``data`` and ``error``, and
        the totals. More than ``chunk_size`` ids take several requests."""
        answer: dict[str, Any] = {"results": [], "total_requested": 0}
        answer.update(total_succeeded=0, total_failed=0)
        for chunk in _chunks(ids, chunk_size):
            body: dict[str, Any] = {"resource_type": resource_type, "ids": chunk}
            if fields:
                body["fields"] = list(fields)
            page = self.json("POST", "/api/v1/batch/get", json=body, ok=(200,))
            answer["results"] += page["results"]
            for name in ("total_requested", "total_succeeded", "total_failed"):
                answer[name] += page[name]
            answer["processed_at"] = page.get("processed_at")
        return answer

    def _pages(self, url: str | None, params: dict) -> Iterator[dict]:
        while url:
            page = self.json("GET", url, params=params)
            yield from page["results"]
            url, params = page["next"], None  # the next link carries the query


def write_all(out: IO[bytes], data: bytes) -> None:
    """Write all of ``data``: a buffered write may return having written part of it
    (a pipe whose reader went away), and the next write raises BrokenPipeError."""
    view = memoryview(data)
    while view:
        written = out.write(view)
        if written is None:  # a stream that does not count: it took everything
            return
        view = view[written:]


def _one_request(runs: Iterable[dict], limit: int) -> list[dict]:
    """``runs`` as a list, or TransactionTooLarge when they need more than one request."""
    iterator = iter(runs)
    held = list(islice(iterator, limit))
    if next(iterator, None) is not None:
        raise TransactionTooLarge(
            f"A transactional upload is all or nothing in one request, which holds at "
            f"most {limit} runs, and these are more; nothing was sent. Upload them without "
            f"transactional (each valid run stored, each invalid one reported by index), "
            f"or in parts of at most {limit}."
        )
    return held
