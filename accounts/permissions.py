"""Scope checks: each view maps HTTP methods to the scope an API key needs."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.permissions import BasePermission


def required_scope(view, method: str) -> str | None:
    scopes: dict[str, str] = getattr(view, "scopes", {})
    if method == "HEAD":
        method = "GET"
    return scopes.get(method)


class HasScope(BasePermission):
    """Needs an API key; and, where the view names one for the method, that scope."""

    def has_permission(self, request, view) -> bool:
        api_key = request.auth
        if api_key is None:
            raise exceptions.NotAuthenticated(
                "API key required: send it as `X-API-Key: KEY` or `Authorization: Bearer KEY`."
            )
        scope = required_scope(view, request.method)
        if scope and not api_key.has_scope(scope):
            raise exceptions.PermissionDenied(f"This API key lacks the required scope: {scope}")
        return True
