"""OpenAPI descriptions of the API key authentication (for /v1/docs "Authorize") and of the
shared fields whose schema drf-spectacular cannot infer (the envelope and the error statuses
are documented by accounts.openapi)."""

from __future__ import annotations

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)

from accounts.ids import OBJECT_ID_RE


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.APIKeyAuthentication"
    name = ["ApiKeyHeader", "BearerKey"]

    def get_security_requirement(self, auto_schema):
        # Either header: two requirements (OR). One requirement naming both would mean AND,
        # and clients (schemathesis among them) would send both headers.
        return [{name: []} for name in self.name]

    def get_security_definition(self, auto_schema):
        return [
            {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "Your API key."},
            {
                "type": "http",
                "scheme": "bearer",
                "description": "The same API key as a Bearer token.",
            },
        ]


class ObjectIdFieldSchema(OpenApiSerializerFieldExtension):
    """An id in a body is exactly an id (a malformed one is a 400 naming the field)."""

    target_class = "accounts.fields.ObjectIdField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "pattern": OBJECT_ID_RE.pattern}
