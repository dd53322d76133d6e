"""Chat processors: what answers one row of a batch.

A processor is a class registered by name in settings.BATCH_PROCESSORS. It is built
once per batch with the batch's options and called once per item with the row's
values and the earlier exchanges of the same conversation. It returns a
JSON-serialisable dict with at least "text", or raises ProcessorError (the item
fails with that message; the batch goes on).

The URLs the network processors call come only from settings, never from the row or
the options, so an upload cannot make the server request an address of its choosing
(server-side request forgery). Transient failures (connection errors, timeouts, 429,
5xx) are retried with exponential backoff before the item fails; other 4xx answers
fail at once, as repeating them cannot help.

Every call of a network processor first waits for its slot in the processor's lane
(batches.processors.lanes: the rate limits all workers share). A 429 with a Retry-After pauses
the lane for every worker that long, and the call is tried again after the pause
without spending a retry.
"""

import json
import logging
import math
import random
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.utils.module_loading import import_string

from batches.processors.lanes import OPTIONS as RATE_OPTIONS
from batches.processors.lanes import Lane, check_options

logger = logging.getLogger("batches.processors.base")

# Too many requests, and any server error: a model API answers 529 when overloaded,
# proxies 520-527.
RETRY_STATUSES = frozenset({429, *range(500, 600)})
MAX_DELAY = 10.0
# A Retry-After longer than this is not waited for in full: the item would hold a
# worker slot for minutes. (A 429's pauses the whole lane instead: batches.processors.lanes.)
MAX_RETRY_AFTER = 30.0
# Hosted APIs that answer nothing without a key (a local server often needs none).
KEYED_HOSTS = frozenset({"api.openai.com"})
# The most 429s with a Retry-After one call waits out (pausing its lane) before they
# count as failures like any other.
MAX_PAUSES = 20


class ProcessorError(Exception):
    """the item fails; str(exc) is stored as its error"""


# Seed 004's option form fields (lang, searchProvider, applyOverrides): every processor
# takes them, so that its uploads are accepted whatever the processor.
FORM_OPTIONS = {
    "lang": "the answers' language (the lang form field)",
    "search_provider": "a search provider's name (the searchProvider form field)",
    "apply_overrides": "true or false (the applyOverrides form field)",
}


class Processor:
    """Base class. Subclasses set ``name`` and ``accepts`` and implement ``process``;
    ``__init__`` validates the options and raises ValueError with a sentence when
    they are wrong or the processor is not configured."""

    name: ClassVar[str]
    # The options it takes, name -> what it is: refused uploads, the schema and the
    # README list them from here. Declaring one more is one line.
    accepts: ClassVar[dict[str, str]] = FORM_OPTIONS
    # Options it does not know are passed on (to a service that knows them) rather
    # than refused.
    passes_on: ClassVar[bool] = False
    # The setting holding the address it calls, named when every item fails alike.
    address_setting: ClassVar[str] = ""

    def __init__(self, options: dict):
        if not isinstance(options, dict):
            raise ValueError("The processor options must be a JSON object.")
        if missing := self.configuration_error():
            raise ValueError(missing)
        unknown = [key for key in options if key not in self.accepts]
        if unknown and not self.passes_on:
            raise UnknownOptions(self, unknown)
        self.options = options

    @classmethod
    def configuration_error(cls) -> str | None:
        """Why the processor cannot be used with this server's settings (a sentence
        naming the setting), or None. Checked at upload and by the worker."""
        return None

    def process(self, input: dict, history: list[dict]) -> dict:
        raise NotImplementedError

    def bind(self, *, batch_id) -> None:
        """The processor works for this batch (its calls spend the batch's own rate
        limits too, when its options set any)."""

    def close(self) -> None:
        """Release connections; the processor is not used afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class UnknownOptions(ValueError):
    """Options the processor does not take; ``details`` lists those it does."""

    def __init__(self, processor: Processor, unknown: list[str]):
        plural = "s" if len(unknown) > 1 else ""
        taken = "; ".join(f"{key}: {what}" for key, what in processor.accepts.items())
        super().__init__(
            f"The {processor.name} processor takes no option{plural} "
            f"{', '.join(map(repr, unknown))}; it takes: {taken}."
        )
        self.details = {"unknown_options": unknown, "accepted_options": dict(processor.accepts)}


def get_processor(name: str, options: dict) -> Processor:
    """Build the processor registered as ``name`` in settings.BATCH_PROCESSORS.
    ValueError (with a sentence for the user) for an unknown name or bad options."""
    processor = processor_class(name)
    if processor is None:
        registry = settings.BATCH_PROCESSORS
        raise ValueError(f"Unknown processor {name!r}; choose one of: {', '.join(registry)}.")
    return processor(options)


def processor_class(name: str) -> type[Processor] | None:
    path = settings.BATCH_PROCESSORS.get(name)
    return None if path is None else import_string(path)


def processor_names() -> list[str]:
    return list(settings.BATCH_PROCESSORS)


def options_help() -> str:
    """The options each registered processor takes, for the schema and the forms."""
    described = []
    for name, path in settings.BATCH_PROCESSORS.items():
        processor = import_string(path)
        others = ", and any other (passed on)" if processor.passes_on else ""
        described.append(f"{name}: {', '.join(processor.accepts)}{others}")
    return "; ".join(described)


class EchoProcessor(Processor):
    """Answers without a network: the question and the turn number. ``delay``
    (seconds, at most 10) simulates a slow model in tests and benchmarks."""

    name = "echo"
    accepts = {**FORM_OPTIONS, "delay": "seconds per item, a number, at most 10 (default 0)"}

    def __init__(self, options: dict):
        super().__init__(options)
        delay = options.get("delay", 0)
        if isinstance(delay, bool) or not isinstance(delay, int | float) or delay < 0:
            raise ValueError("The echo processor's delay must be a number of seconds.")
        self.delay = min(float(delay), MAX_DELAY)

    def process(self, input: dict, history: list[dict]) -> dict:
        if self.delay:
            time.sleep(self.delay)
        turn = len(history) + 1
        return {"text": f"echo: {input.get('question', '')} (turn {turn})", "turn": turn}


class _HttpProcessor(Processor):
    """Shared by the network processors: one httpx client per processor (its
    connection pool is reused across items and may be shared by threads), and
    ``_post`` with the lane's rate limits, timeouts and retries. Options
    ``requests_per_minute`` and ``tokens_per_minute`` lower the processor's limits
    (BATCH_RATE_LIMITS) for one batch."""

    # Options every network processor takes.
    accepts = {
        **FORM_OPTIONS,
        "requests_per_minute": "a whole number, at most the limit in BATCH_RATE_LIMITS",
        "tokens_per_minute": "a whole number, at most the limit in BATCH_RATE_LIMITS",
    }

    def __init__(self, options: dict, *, headers: dict | None = None):
        super().__init__(options)
        check_options(self.name, options)
        self.lane = Lane(self.name, options)
        self._http = httpx.Client(
            timeout=settings.BATCH_PROCESSOR_TIMEOUT,
            headers=headers,
            follow_redirects=False,  # a redirect could point anywhere
        )

    def bind(self, *, batch_id) -> None:
        self.lane = Lane(self.name, self.options, batch_id)

    def close(self) -> None:
        self._http.close()

    def _post(self, url: str, payload: dict, *, tokens: int = 0) -> dict:
        """POST JSON in the lane's next slot (``tokens``: the call's estimate), retry
        transient failures, return the answer's JSON object."""
        attempts = 1 + settings.BATCH_PROCESSOR_RETRIES
        attempt = pauses = 0
        while True:
            last = attempt == attempts - 1
            self.lane.acquire(tokens)
            try:
                response = self._http.post(url, json=payload)
            except httpx.TransportError as exc:
                if last:
                    raise ProcessorError(f"{self.name} processor: {_describe(exc)}.") from None
                logger.warning("%s processor: %s; retrying", self.name, _describe(exc))
                _sleep(attempt)
                attempt += 1
                continue
            wait = _retry_after_seconds(response.headers.get("Retry-After"))
            if response.status_code == 429 and wait is not None and pauses < MAX_PAUSES:
                logger.warning("%s processor: HTTP 429; lane paused %.1f s", self.name, wait)
                self.lane.pause(wait)
                pauses += 1
                continue
            if response.status_code in RETRY_STATUSES and not last:
                logger.warning("%s processor: HTTP %s; retrying", self.name, response.status_code)
                _sleep(attempt, response.headers.get("Retry-After"))
                attempt += 1
                continue
            return self._answer(response)

    def _answer(self, response: httpx.Response) -> dict:
        if not response.is_success:
            raise ProcessorError(
                f"{self.name} processor: HTTP {response.status_code} {response.reason_phrase}"
                f"{_excerpt(response)}."
            )
        try:
            body = response.json()
        except ValueError:
            raise ProcessorError(f"{self.name} processor: the answer is not JSON.") from None
        if not isinstance(body, dict):
            raise ProcessorError(f"{self.name} processor: the answer is not a JSON object.")
        return body


class HttpProcessor(_HttpProcessor):
    """POSTs {"input", "history", "options"} to settings.BATCH_HTTP_URL and stores the
    JSON object it answers, with "text" taken from it (or the whole answer as text)."""

    name = "http"
    # The service at BATCH_HTTP_URL, not this server, knows which options it takes.
    passes_on = True
    address_setting = "BATCH_HTTP_URL"

    def __init__(self, options: dict):
        super().__init__(options)
        self.url = settings.BATCH_HTTP_URL

    @classmethod
    def configuration_error(cls) -> str | None:
        if not settings.BATCH_HTTP_URL:
            return "The http processor is not configured (BATCH_HTTP_URL is empty)."
        return None

    def process(self, input: dict, history: list[dict]) -> dict:
        options = {key: value for key, value in self.options.items() if key not in RATE_OPTIONS}
        body = self._post(self.url, {"input": input, "history": history, "options": options})
        text = body.get("text")
        if not isinstance(text, str):
            text = json.dumps(body if text is None else text, ensure_ascii=False)
        return {**body, "text": text}


class OpenAIProcessor(_HttpProcessor):
    """An OpenAI-compatible chat completions endpoint at settings.OPENAI_BASE_URL.
    Options: ``model`` (default settings.OPENAI_MODEL), ``system_prompt``, and the
    rate options of every network processor. Each answer's ``usage`` is kept (and
    stored with the item); it corrects the lane's token estimate."""

    name = "openai"
    accepts = {
        **_HttpProcessor.accepts,
        "model": "the model's name, text (default: OPENAI_MODEL)",
        "system_prompt": "text sent first as the system message (default: none)",
    }
    address_setting = "OPENAI_BASE_URL"

    def __init__(self, options: dict):
        headers = {}
        if settings.OPENAI_API_KEY:
            headers["Authorization"] = f"Bearer {settings.OPENAI_API_KEY}"
        super().__init__(options, headers=headers)
        for key in ("model", "system_prompt"):
            if not isinstance(options.get(key, ""), str):
                self.close()
                raise ValueError(f"The openai processor's {key} must be text.")
        self.url = settings.OPENAI_BASE_URL.rstrip("/") + "/chat/completions"
        self.model = options.get("model") or settings.OPENAI_MODEL
        self.system_prompt = options.get("system_prompt") or ""
        self.completions = Mean()

    @classmethod
    def configuration_error(cls) -> str | None:
        if not settings.OPENAI_BASE_URL:
            return "The openai processor is not configured (OPENAI_BASE_URL is empty)."
        host = urlsplit(settings.OPENAI_BASE_URL).hostname or ""
        if not settings.OPENAI_API_KEY and host in KEYED_HOSTS:
            return (
                f"The openai processor is not configured (OPENAI_API_KEY is empty, and "
                f"{host} needs a key)."
            )
        return None

    def process(self, input: dict, history: list[dict]) -> dict:
        messages = self.messages(input, history)
        estimate = estimate_tokens(messages) + self.completions.value
        body = self._post(self.url, {"model": self.model, "messages": messages}, tokens=estimate)
        usage = usage_of(body)
        if usage is not None:
            self.lane.correct(usage["total_tokens"] - estimate)
            self.completions.add(usage["completion_tokens"])
        try:
            text = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ProcessorError("openai processor: the answer has no message.") from None
        if not isinstance(text, str):
            raise ProcessorError("openai processor: the answer has no text.")
        return {"text": text, "model": body.get("model", self.model), "usage": body.get("usage")}

    def messages(self, input: dict, history: list[dict]) -> list[dict]:
        """System prompt, then each earlier exchange as a user and an assistant
        message (an exchange without an answer contributes its question only)."""
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        for exchange in history:
            messages.append({"role": "user", "content": _question(exchange.get("input"))})
            answer = (exchange.get("output") or {}).get("text")
            if answer:
                messages.append({"role": "assistant", "content": answer})
        messages.append({"role": "user", "content": _question(input)})
        return messages


def estimate_tokens(messages: list[dict]) -> int:
    """The prompt's tokens before the call: one per four characters (OpenAI's rule of
    thumb for English text) and four per message for its role and separators."""
    return sum(math.ceil(len(message["content"]) / 4) + 4 for message in messages)


USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens")


def usage_of(output: dict | None) -> dict | None:
    """An answer's ``usage`` as three whole numbers of tokens, or None without one."""
    usage = (output or {}).get("usage") if isinstance(output, dict) else None
    if not isinstance(usage, dict):
        return None
    counts = {key: usage.get(key) for key in USAGE_FIELDS}
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts.values()):
        return None
    return counts


class Mean:
    """A running mean: the completion tokens expected of the next call, from the
    answers this processor had so far."""

    def __init__(self):
        self.total = self.count = 0

    def add(self, value: int) -> None:
        self.total += value
        self.count += 1

    @property
    def value(self) -> int:
        return round(self.total / self.count) if self.count else 0


def _question(values: Any) -> str:
    return str((values or {}).get("question") or "")


def _sleep(attempt: int, retry_after: str | None = None) -> None:
    delay = settings.BATCH_PROCESSOR_BACKOFF_MS / 1000 * 2**attempt * (1 + random.random() / 4)
    asked = _retry_after_seconds(retry_after)
    if asked is not None:
        delay = max(delay, min(asked, MAX_RETRY_AFTER))
    time.sleep(delay)


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: given as seconds or as an HTTP date (RFC 9110)."""
    value = (value or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "no answer within the timeout"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    return f"the connection failed ({type(exc).__name__})"


def _excerpt(response: httpx.Response) -> str:
    text = " ".join(response.text.split())[:200]
    return f": {text}" if text else ""
