"""Driving the OpenAI-compatible Batch API with the official openai SDK: clients, input
files in OpenAI's JSONL format, and waiting for a batch's status."""

import io
import json

from openai import OpenAI

from tests.support.waiting import wait_until

CHAT = "/v1/chat/completions"
ENDED = ("completed", "failed", "expired", "cancelled")


def sdk_client(live_server, token: str) -> OpenAI:
    """The SDK against the live server; no retries, so a refusal surfaces at once."""
    return OpenAI(base_url=f"{live_server.url}/openai/v1", api_key=token, max_retries=0)


def chat_line(custom_id: str, *, url: str = CHAT, method: str = "POST", **stub) -> dict:
    """A request line whose question is its custom_id; ``stub`` scripts the stub
    provider's answer (tests/support/provider.py)."""
    body = {"model": "stub-model", "messages": [{"role": "user", "content": custom_id}]}
    if stub:
        body["stub"] = stub
    return {"custom_id": custom_id, "method": method, "url": url, "body": body}


def jsonl(lines: list) -> bytes:
    """Lines as a JSONL file: dicts as JSON, text (a broken line) as it is."""
    return b"".join(
        (line if isinstance(line, str) else json.dumps(line)).encode() + b"\n" for line in lines
    )


def upload(client: OpenAI, lines: list, name: str = "requests.jsonl"):
    return client.files.create(file=(name, io.BytesIO(jsonl(lines))), purpose="batch")


def create_batch(client: OpenAI, lines: list, **more):
    """Upload ``lines`` and create a chat completions batch of them."""
    file = upload(client, lines)
    return client.batches.create(
        input_file_id=file.id, endpoint=CHAT, completion_window="24h", **more
    )


def wait_for(client: OpenAI, batch_id: str, statuses=ENDED, message: str = "batch status"):
    def reached():
        batch = client.batches.retrieve(batch_id)
        return batch if batch.status in statuses else None

    return wait_until(reached, message=message)


def file_lines(client: OpenAI, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def custom_ids(lines: list[dict]) -> list[str]:
    return [line["custom_id"] for line in lines]
