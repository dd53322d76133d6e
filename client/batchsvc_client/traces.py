"""Writing trace files: several per request when the server has the batch
endpoint, one at a time when it does not (or when a batch fails).

    from batchsvc_client import Client, TraceWriter

    with Client("http://127.0.0.1:8000", token="...") as client:
        writer = TraceWriter(client, "nightly/2026-01-28")
        ok = writer.write_formatted_traces([(json_text, "trace.json"), (text, "trace.txt")])
"""

import logging
from collections.abc import Iterable, Sequence

import httpx

from batchsvc_client._http import _chunks, unavailable
from batchsvc_client.client import Client

logger = logging.getLogger("batchsvc_client.traces")

WRITE = "/api/v1/traces/write"
WRITE_BATCH = "/api/v1/traces/write-batch"
RETRIES = 2
"""Retries of a request after a timeout, a 500 or a broken connection. While the
server is unavailable (503, refused connections) the client's retry_deadline
applies instead."""


class _Unavailable(Exception):
    """The server stayed unavailable past the client's retry deadline."""


class TraceWriter:
    """Writes ``(content, file_name)`` pairs into ``output_directory`` (relative to
    the server's trace root).

    More than one file goes through ``write-batch`` in chunks of
    ``max_batch_size``. A chunk whose request fails (after retries) is written
    file by file when ``fallback_to_individual`` is set. A 404 from
    ``write-batch`` means an older server: the writer stops asking for it.
    Rewriting a path replaces the file, so retrying a write is safe. While the
    server is unavailable the client keeps retrying (see :class:`Client`); when it
    gives up, the files left are not tried one by one, and the call returns False.
    """

    def __init__(
        self,
        client: Client,
        output_directory: str,
        use_batch_endpoint: bool = True,
        fallback_to_individual: bool = True,
        batch_timeout: float = 60,
        max_batch_size: int = 10,
        *,
        run_id: str | None = None,
    ):
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.client = client
        self.output_directory = output_directory
        self.use_batch_endpoint = use_batch_endpoint
        self.fallback_to_individual = fallback_to_individual
        self.batch_timeout = batch_timeout
        self.max_batch_size = max_batch_size
        self.run_id = run_id

    def write_formatted_traces(self, formatted_traces: Iterable[tuple[str, str]]) -> bool:
        """Write every ``(content, file_name)``; True when all were written.
        Files that fail are logged with the server's reason."""
        traces = list(formatted_traces)
        if not traces:
            logger.error("write_formatted_traces needs at least one (content, file_name) pair")
            return False
        return all(result["success"] for result in self.write(traces))

    def write(self, traces: Sequence[tuple[str, str]]) -> list[dict]:
        """Write every ``(content, file_name)``; return a result per file, in order:
        ``{"file_name", "success", "file_path", "error"}``. Files left unwritten
        because the server stayed unavailable also have ``"unavailable": True``."""
        results: list[dict] = []
        try:
            if len(traces) == 1 or not self.use_batch_endpoint:
                self._write_individually(traces, results)
            else:
                for chunk in _chunks(traces, self.max_batch_size):
                    self._write_chunk(chunk, results)
        except _Unavailable as exc:
            logger.error("Trace files not written: the server is unavailable (%s)", exc)
            error = f"not written: the server is unavailable ({exc})"
            results += [
                {**_result(name, error), "unavailable": True} for _, name in traces[len(results) :]
            ]
        return results

    def _write_chunk(self, chunk: list[tuple[str, str]], results: list[dict]) -> None:
        if len(chunk) > 1 and self.use_batch_endpoint:
            written = self._write_batch(chunk)
            if written is not None:
                results += written
                return
            if not self.fallback_to_individual:
                results += [_result(name, "the batch request failed") for _, name in chunk]
                return
            logger.warning("Batch write failed; writing %d files one by one", len(chunk))
        self._write_individually(chunk, results)

    def _write_batch(self, chunk: list[tuple[str, str]]) -> list[dict] | None:
        """A result per file when the server answered per file; None when the request
        itself failed and the files were not handled."""
        files = [self._file(content, name) for content, name in chunk]
        try:
            response = self._post(WRITE_BATCH, {"files": files}, timeout=self.batch_timeout)
        except httpx.HTTPError as exc:
            logger.error("Batch write request failed for %d files: %s", len(chunk), exc)
            return None
        if response.status_code == 404:
            logger.info("The server has no batch write endpoint; writing files one by one")
            self.use_batch_endpoint = False
            return None
        body = _json(response)
        if response.status_code != 200 or "results" not in body:
            logger.error("Batch write failed: HTTP %s %s", response.status_code, _error(body))
            return None
        summary = body.get("summary", {})
        logger.info(
            "Batch write completed: %s of %s files written in %s ms",
            summary.get("successful"),
            summary.get("total_files"),
            summary.get("processing_time_ms"),
        )
        results = []
        for (_, name), answer in zip(chunk, body["results"], strict=False):
            if not answer.get("success"):
                logger.error("Trace file %s not written: %s", name, answer.get("error"))
            results.append({**_result(name, answer.get("error")), **_written(answer)})
        return results

    def _write_individually(self, traces: Sequence[tuple[str, str]], results: list[dict]):
        for content, name in traces:
            results.append(self._write_one(content, name))

    def _write_one(self, content: str, file_name: str) -> dict:
        try:
            response = self._post(WRITE, self._file(content, file_name))
        except httpx.HTTPError as exc:
            logger.error("Trace file %s not written: %s", file_name, exc)
            return _result(file_name, str(exc) or type(exc).__name__)
        body = _json(response)
        if response.status_code != 201:
            error = f"HTTP {response.status_code} {_error(body)}"
            logger.error("Trace file %s not written: %s", file_name, error)
            return _result(file_name, error)
        return {**_result(file_name, None), **_written(body)}

    def _post(self, path: str, body: dict, **kwargs) -> httpx.Response:
        """The server's answer; _Unavailable when the client gave up waiting for it."""
        try:
            response = self.client.request("POST", path, json=body, retries=RETRIES, **kwargs)
        except httpx.TransportError as exc:
            if unavailable(exc):
                raise _Unavailable(exc) from exc
            raise
        if unavailable(response):
            raise _Unavailable(f"HTTP {response.status_code} {_error(_json(response))}")
        return response

    def _file(self, content: str, file_name: str) -> dict:
        file = {"trace_data": content, "file_name": file_name}
        file["output_directory"] = self.output_directory
        if self.run_id is not None:
            file["run_id"] = self.run_id
        return file


def _result(file_name: str, error: str | None) -> dict:
    return {"file_name": file_name, "success": error is None, "file_path": None, "error": error}


def _written(answer: dict) -> dict:
    """What the server said of a file: written or not, and where."""
    return {"success": bool(answer.get("success")), "file_path": answer.get("file_path")}


def _json(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {"error": response.text[:200]}
    return body if isinstance(body, dict) else {"error": repr(body)[:200]}


def _error(body: dict) -> str:
    return str(body.get("error", ""))
