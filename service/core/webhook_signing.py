"""Standard Webhooks signing (https://www.standardwebhooks.com): the secret's form and the
three headers every delivery carries.

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the signature is
``v1,<base64 HMAC-SHA256>`` keyed with the base64-decoded part of the secret after ``whsec_``.
While a rotated secret's grace period runs, both signatures are sent, separated by a space, as
the specification allows, so a receiver holding either secret verifies the delivery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(
    active_secrets: Sequence[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: one signature per active secret."""
    signed = " ".join(signature(s, message_id, timestamp, body) for s in active_secrets)
    return {"webhook-id": message_id, "webhook-timestamp": str(timestamp),
            "webhook-signature": signed}  # fmt: skip
