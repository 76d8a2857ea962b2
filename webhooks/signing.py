"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

A secret reads `whsec_` + base64 of 24 random bytes; the signature of a message is
`v1,` + base64(HMAC-SHA256(secret bytes, f"{webhook-id}.{webhook-timestamp}.{body}")).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(*, secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The `v1,...` signature of one message."""
    to_sign = f"{msg_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_key_bytes(secret), to_sign, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(*, secrets_: list[str], msg_id: str, timestamp: int, body: str) -> str:
    """`webhook-signature`: one signature per valid secret, space-separated (newest first)."""
    return " ".join(
        sign(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body) for secret in secrets_
    )
