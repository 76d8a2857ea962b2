"""Encryption at rest for secrets the server must read back (webhook signing secrets, phone
provider credentials): Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`).

Keys come from `settings.FIELD_ENCRYPTION_KEYS` (env `FIELD_ENCRYPTION_KEY`, comma-separated,
newest first; else the file `var/field_key` that `make` creates). `MultiFernet` encrypts with
the first key and decrypts with any, so a key is rotated by putting a new one in front, running
`rotate()` over the stored values, then dropping the old key.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class DecryptionError(Exception):
    """A stored value cannot be decrypted with any configured key (wrong or dropped key)."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise DecryptionError("No FIELD_ENCRYPTION_KEY is configured.")
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _current() -> MultiFernet:
    # Keyed on the configured tuple, so tests that override the setting get their keys.
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(value: str) -> str:
    """The Fernet token (URL-safe base64 text) of `value`, under the newest key."""
    return _current().encrypt(value.encode()).decode("ascii")


def decrypt(token: str) -> str:
    """The clear text of a token made by `encrypt`, with whichever configured key made it."""
    try:
        return _current().decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError, ValueError) as exc:
        # Never include the token or any clear text in the message.
        raise DecryptionError(
            "Cannot decrypt a stored secret: was FIELD_ENCRYPTION_KEY changed without keeping "
            "the old key after the new one?"
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt a token under the newest key (after a new key was put first)."""
    try:
        return _current().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError, ValueError) as exc:
        raise DecryptionError(
            "Cannot re-encrypt a stored secret with the configured keys."
        ) from exc
