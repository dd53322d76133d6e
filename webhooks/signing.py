"""Standard Webhooks signatures, made with the ``standardwebhooks`` package: secrets
``whsec_`` + base64, and the ``webhook-id`` / ``webhook-timestamp`` /
``webhook-signature`` headers, one signature per secret (two while a rotation
overlaps), so that a receiver holding either secret verifies the message."""

import base64
import json
import secrets
from datetime import datetime

from standardwebhooks import Webhook

SECRET_BYTES = 32


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def body_of(payload: dict) -> bytes:
    """The body sent: compact JSON, the bytes every signature is made over."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signed_headers(*, webhook_id: str, body: bytes, keys: list[str], at: datetime) -> dict:
    signatures = [Webhook(secret).sign(webhook_id, at, body) for secret in keys]
    return {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
