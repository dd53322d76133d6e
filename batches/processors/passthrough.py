"""The openai_batch processor: one line of an OpenAI batch file, its ``body`` sent as it
is to the OpenAI-compatible provider at settings.OPENAI_BASE_URL, at the path of the
batch's endpoint (the OpenAI-compatible Batch API, openai_api, makes these batches).

The provider's whole answer is kept, whatever its status, so that the batch's output
and error files can be written in OpenAI's line format: a success is the item's output,
``{"text", "status_code", "request_id", "body", "usage"}``; a 4xx or 5xx answer that the
retries could not cure fails the item with that answer as its error, JSON
``{"status_code", "request_id", "body"}``; a line that could not be sent at all fails
with JSON ``{"code", "message"}`` (see :func:`unsent`). Past the batch's ``expires_at``
nothing more is sent: the line fails with the code ``batch_expired``.
"""

import json
import math
import time

import msgspec
from django.conf import settings

from batches.processors.base import ProcessorError
from batches.processors.connections import Answer
from batches.processors.http import NetworkProcessor
from batches.processors.openai import Mean, OpenAICompatible

# The endpoints a batch may name, each sent to OPENAI_BASE_URL + the path after /v1.
ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
EXPIRED = "batch_expired"
# A batch's lines are claimed in runs of up to this many (a claim a line took half
# the worker's time with a fast provider); each is still sent alone, without history.
MOST_LINES_PER_CLAIM = 20

_encode = msgspec.json.encode
_decode = msgspec.json.decode


def unsent(code: str, message: str) -> str:
    """The error of a line that was not answered: JSON ``{"code", "message"}``."""
    return json.dumps({"code": code, "message": message})


def unsent_prefix(code: str) -> str:
    """How the error of a line not answered with ``code`` starts, to find it in SQL."""
    return unsent(code, "")[: -len(', "message": ""}')]


def lines_per_claim(total: int) -> int:
    """How many lines one claim takes: runs short enough that even the widest batch
    (BATCH_CONCURRENCY_MAX threads) gets eight runs a thread, so its last runs end
    close together."""
    return max(1, min(MOST_LINES_PER_CLAIM, total // (settings.BATCH_CONCURRENCY_MAX * 8)))


class LineError(ProcessorError):
    """An item's failure already written as the line's error (JSON)."""


def answered(response: Answer, body) -> dict:
    return {
        "status_code": response.status_code,
        "request_id": response.headers.get("x-request-id"),
        "body": body,
    }


class PassthroughProcessor(OpenAICompatible):
    """Sends each line's body to OPENAI_BASE_URL at its batch's endpoint. Options (set
    by openai_api when it creates the batch): ``endpoint``, ``expires_at`` (Unix
    seconds), and the rate options of every network processor."""

    name = "openai_batch"
    reports_usage = True
    uploadable = False  # its lines come from the OpenAI-compatible surface only
    runs_of_rows = True  # see lines_per_claim
    accepts = {
        **NetworkProcessor.accepts,
        "endpoint": f"the path every line is sent to: one of {', '.join(ENDPOINTS)}",
        "expires_at": "Unix seconds after which no line is sent (default: never)",
    }

    def __init__(self, options: dict):
        super().__init__(options)
        endpoint, expires_at = options.get("endpoint"), options.get("expires_at")
        if endpoint not in ENDPOINTS:
            self.close()
            raise ValueError(
                f"The {self.name} processor's endpoint must be one of: {', '.join(ENDPOINTS)}."
            )
        if expires_at is not None and (
            isinstance(expires_at, bool) or not isinstance(expires_at, int | float)
        ):
            self.close()
            raise ValueError(f"The {self.name} processor's expires_at must be Unix seconds.")
        self.url = settings.OPENAI_BASE_URL.rstrip("/") + endpoint.removeprefix("/v1")
        self.expires_at = expires_at
        self.completions = Mean()

    def process(self, input: dict, history: list[dict]) -> dict:
        body = input.get("body") if isinstance(input, dict) else None
        if not isinstance(body, dict):
            raise LineError(unsent("invalid_request", "The line has no JSON object body."))
        self._sending()
        estimate = math.ceil(len(_encode(body)) / 4) + self.completions.value
        try:
            response = self._exchange(self.url, body, tokens=estimate)
        except LineError:
            raise
        except ProcessorError as exc:
            raise LineError(unsent("provider_unavailable", str(exc))) from None
        try:
            answer = _decode(response.content)
        except msgspec.DecodeError:
            answer = response.text
        outcome = answered(response, answer)
        if not response.is_success or not isinstance(answer, dict):
            raise LineError(json.dumps(outcome))
        usage = usage_of(answer)
        if usage is not None:
            self.lane.correct(usage["total_tokens"] - estimate)
            self.completions.add(usage["completion_tokens"])
        return {"text": text_of(answer), **outcome, "usage": usage}

    def _sending(self) -> None:
        if self.expires_at is not None and time.time() >= self.expires_at:
            message = "This request could not be executed before the completion window expired."
            raise LineError(unsent(EXPIRED, message))


def usage_of(answer: dict) -> dict | None:
    """The answer's tokens as the engine keeps them (prompt, completion, total); an
    embedding's usage has no completion tokens, which count as 0."""
    usage = answer.get("usage")
    if not isinstance(usage, dict):
        return None
    counts = {
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens", 0),
        "total_tokens": usage.get("total_tokens"),
    }
    if not all(type(n) is int and n >= 0 for n in counts.values()):
        return None
    return counts


def text_of(answer: dict) -> str:
    """The answer's text for the batch's other views (the admin, the spreadsheet
    results): a chat completion's message, a completion's text, else nothing."""
    choices = answer.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(first, dict):
        return ""
    message = first.get("message")
    text = message.get("content") if isinstance(message, dict) else first.get("text")
    return text if isinstance(text, str) else ""
