"""Writes for organizations and API keys."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.keys import generate_key, hash_key, key_prefix
from accounts.models import ALL_SCOPES, APIKey, Organization

# last_used_at is a hint, not an audit log: write it at most once a minute per key.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def organization_get_or_create(*, name: str) -> Organization:
    organization, _ = Organization.objects.get_or_create(name=name)
    return organization


def scopes_validate(scopes: Iterable[str]) -> list[str]:
    cleaned = sorted({s.strip() for s in scopes if s and s.strip()})
    unknown = [s for s in cleaned if s not in ALL_SCOPES]
    if unknown:
        raise ValidationError(
            f"Unknown scope(s): {', '.join(unknown)}. Known scopes: {', '.join(ALL_SCOPES)}"
        )
    return cleaned


@transaction.atomic
def api_key_create(
    *, organization: Organization, name: str, scopes: Iterable[str]
) -> tuple[APIKey, str]:
    """Create a key and return it with its secret, which is never stored or shown again."""
    cleaned = scopes_validate(scopes)
    while True:
        secret = generate_key()
        if not APIKey.objects.filter(prefix=key_prefix(secret)).exists():
            break
    api_key = APIKey.objects.create(
        organization=organization,
        name=name,
        prefix=key_prefix(secret),
        secret_hash=hash_key(secret),
        scopes=cleaned,
    )
    return api_key, secret


def api_key_revoke(*, api_key: APIKey) -> APIKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def api_key_touch(*, api_key: APIKey) -> None:
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        APIKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
