"""Reads for API keys."""

from __future__ import annotations

from accounts.keys import key_matches, key_prefix, looks_like_key
from accounts.models import APIKey


def api_key_for_secret(*, secret: str) -> APIKey | None:
    """The active key whose secret this is, or None (unknown, malformed or revoked)."""
    if not looks_like_key(secret):
        return None
    api_key = (
        APIKey.objects.select_related("organization").filter(prefix=key_prefix(secret)).first()
    )
    if api_key is None or not key_matches(secret, api_key.secret_hash):
        return None
    if not api_key.is_active:
        return None
    return api_key
