"""The openai processor: an OpenAI-compatible chat completions endpoint, with the
conversation's earlier exchanges as messages and token usage kept per item."""

import math
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from batches.processors.base import ProcessorError, usage_of
from batches.processors.http import NetworkProcessor

# Hosted APIs that answer nothing without a key (a local server often needs none).
KEYED_HOSTS = frozenset({"api.openai.com"})


class OpenAICompatible(NetworkProcessor):
    """A processor calling the OpenAI-compatible API at settings.OPENAI_BASE_URL, with
    OPENAI_API_KEY as its bearer token when one is set."""

    address_setting = "OPENAI_BASE_URL"

    def __init__(self, options: dict):
        headers = {}
        if settings.OPENAI_API_KEY:
            headers["Authorization"] = f"Bearer {settings.OPENAI_API_KEY}"
        super().__init__(options, headers=headers)

    @classmethod
    def configuration_error(cls) -> str | None:
        if not settings.OPENAI_BASE_URL:
            return f"The {cls.name} processor is not configured (OPENAI_BASE_URL is empty)."
        host = urlsplit(settings.OPENAI_BASE_URL).hostname or ""
        if not settings.OPENAI_API_KEY and host in KEYED_HOSTS:
            return (
                f"The {cls.name} processor is not configured (OPENAI_API_KEY is empty, and "
                f"{host} needs a key)."
            )
        return None


class OpenAIProcessor(OpenAICompatible):
    """An OpenAI-compatible chat completions endpoint at settings.OPENAI_BASE_URL.
    Options: ``model`` (default settings.OPENAI_MODEL), ``system_prompt``, and the
    rate options of every network processor. Each answer's ``usage`` is kept (and
    stored with the item); it corrects the lane's token estimate."""

    name = "openai"
    reports_usage = True
    accepts = {
        **NetworkProcessor.accepts,
        "model": "the model's name, text (default: OPENAI_MODEL)",
        "system_prompt": "text sent first as the system message (default: none)",
    }

    def __init__(self, options: dict):
        super().__init__(options)
        for key in ("model", "system_prompt"):
            if not isinstance(options.get(key, ""), str):
                self.close()
                raise ValueError(f"The openai processor's {key} must be text.")
        self.url = settings.OPENAI_BASE_URL.rstrip("/") + "/chat/completions"
        self.model = options.get("model") or settings.OPENAI_MODEL
        self.system_prompt = options.get("system_prompt") or ""
        self.completions = Mean()

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
