"""Single-use, short-lived tokens for the realtime gateway. Only their hash is stored."""

from __future__ import annotations

import hashlib
import secrets


def new_gateway_token() -> str:
    return secrets.token_urlsafe(24)


def hash_gateway_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
