"""OpenAPI description of the API key authentication (for /v1/docs "Authorize")."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.APIKeyAuthentication"
    name = ["ApiKeyHeader", "BearerKey"]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "Your API key."},
            {
                "type": "http",
                "scheme": "bearer",
                "description": "The same API key as a Bearer token.",
            },
        ]
