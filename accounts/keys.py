"""API key format, hashing and look-up.

A key reads `vwk_<prefix><secret>`: the first 12 characters (`vwk_` + 8) are the visible
prefix stored in clear for look-up and display; the whole key is stored only as a SHA-256
hash. Keys carry 256 bits of randomness, so a fast hash is enough (no password stretching).
"""

from __future__ import annotations

import hashlib
import hmac
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


def looks_like_key(key: str) -> bool:
    return key.startswith(KEY_PREFIX) and 40 <= len(key) <= 128 and key.isascii()
