"""API key format, hashing and look-up.

A key reads `vwk_<prefix><secret>`: the first 12 characters (`vwk_` + 8) are the visible
prefix stored in clear for look-up and display; the whole key is stored only as a SHA-256
hash. Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

KEY_PREFIX = "vwk_"
PREFIX_LENGTH = len(KEY_PREFIX) + 8


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_hex(4) + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]


def key_matches(key: str, secret_hash: str) -> bool:
    return hmac.compare_digest(hash_key(key), secret_hash)


# `vwk_`, then hex and url-safe base64: 40-128 characters in all. Anything else (a NUL, a
# quote, non-ASCII) is refused before the prefix reaches a query.
KEY_SHAPE = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9_-]{36,124}")


def looks_like_key(key: str) -> bool:
    return bool(KEY_SHAPE.fullmatch(key))
