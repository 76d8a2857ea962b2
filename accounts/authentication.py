"""API key authentication: `X-API-Key: KEY` or `Authorization: Bearer KEY`."""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, SessionAuthentication

from accounts.models import APIKey, Organization
from accounts.selectors import api_key_for_secret
from accounts.services import api_key_touch


@dataclass(frozen=True)
class APIKeyPrincipal:
    """What `request.user` is for a request authenticated by an API key."""

    api_key: APIKey

    is_authenticated = True
    is_anonymous = False

    @property
    def pk(self) -> str:
        # DRF's user-based throttles (create-call's ScopedRateThrottle) key on `user.pk`.
        return self.api_key.pk

    @property
    def organization(self) -> Organization:
        return self.api_key.organization


def key_from_headers(headers) -> str | None:
    key = headers.get("X-API-Key")
    if key:
        return key.strip()
    authorization = headers.get("Authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class APIKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        secret = key_from_headers(request.headers)
        if secret is None:
            return None
        api_key = api_key_for_secret(secret=secret)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        api_key_touch(api_key=api_key)
        return APIKeyPrincipal(api_key), api_key

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class StaffSessionAuthentication(SessionAuthentication):
    """A signed-in staff user's Django session, for the admin's own pages (the live preview).

    Cookie-authenticated writes are CSRF-checked (SessionAuthentication.enforce_csrf). Anyone
    else's session (a non-staff or inactive user) is ignored: such a request is anonymous."""

    def authenticate(self, request):
        user = getattr(request._request, "user", None)
        if user is None or not user.is_active or not user.is_staff:
            return None
        self.enforce_csrf(request)
        return user, None
