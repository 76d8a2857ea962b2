"""The /v1 API's OpenAPI conventions, in one place (`REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]`).

Views declare only what is theirs: the serializer of `data` (`responses=WidgetSerializer`,
`{201: AssistantSerializer}`, `CallSerializer(many=True)` for a list) and the statuses only
they give (a `409`, a `503`, a `404` for an id sent in the body). `EnvelopeAutoSchema` then
documents what every operation shares, as `accounts.api.ok` and `accounts.errors` answer it:

- success bodies in the envelope `{"status": true, "message": ..., "data": ...}`; a list
  (`many=True`) adds `meta` (`PageMeta`); a delete answers 200 with `data: null`; a serializer
  marked `BareBody` is the whole body (the seed-mandated flat bodies, the embed script's
  public configuration);
- the error envelope (`Error`) for each error status the operation can give: 400 where it
  takes a body or query parameters, 401 and 403 where an API key authenticates it, 404 where
  its path has an id, 413 for a method that may carry a body (checked before anything else),
  415 where it parses a body, 429 where it is throttled, 500 everywhere. A status a view
  declares without a body gets the same schema; 429 and 503 document `Retry-After`.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent, force_instance
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers

from accounts.api import StrictSerializerMixin
from accounts.permissions import required_scope

JSON = "application/json"
NO_RESPONSE_BODY = "No response body"  # drf-spectacular's description of a response without one
# Methods whose body the request guard measures first (accounts.middleware.BODY_METHODS).
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The error envelope of every /v1 error.",
    "properties": {
        "status": {"type": "boolean", "enum": [False]},
        "message": {"type": "string", "description": "What went wrong, for people."},
        "errors": {
            "type": "object",
            "additionalProperties": {},
            "description": (
                "400 only: the messages of each field that was refused, by field name (a "
                "nested field's errors are nested the same way)."
            ),
        },
    },
    "required": ["status", "message"],
    "additionalProperties": False,
}
PAGE_META_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Where this page lies in the whole list.",
    "properties": {
        "total": {"type": "integer", "minimum": 0, "description": "Items in the whole list."},
        "limit": {"type": "integer", "minimum": 1, "description": "The page size asked for."},
        "offset": {"type": "integer", "minimum": 0, "description": "Items skipped."},
    },
    "required": ["total", "limit", "offset"],
    "additionalProperties": False,
}
NULL_DATA: dict[str, Any] = {"nullable": True, "enum": [None], "description": "Always null."}
RETRY_AFTER = {
    "Retry-After": {
        "schema": {"type": "integer", "minimum": 0},
        "description": "Seconds to wait before trying again.",
    }
}
ERROR_DESCRIPTIONS = {
    "400": "Invalid input: `message` says why; `errors` names each field refused.",
    "401": "No API key, or an unknown or revoked one.",
    "403": "The API key lacks the scope this operation needs (the message names it).",
    "404": "No such object in your organization (a malformed id is a 404 too, without lookup).",
    "413": "The request body is over the size limit (checked before authentication).",
    "415": "The body is not `application/json`.",
    "429": "Too many requests from this client: wait `Retry-After` seconds.",
    "500": "Internal server error.",
}


class BareBody:
    """Marks a response serializer that is the whole body rather than the envelope's `data`."""


@extend_schema_field({"type": "boolean", "enum": [True]})
class SuccessField(serializers.BooleanField):
    """`status` of a success body: always true."""


class FlatEnvelopeSerializer(BareBody, serializers.Serializer):
    """Seed-mandated success bodies that put their fields beside `status` and `message`
    instead of in `data` (`POST /v1/calls/initiate`, `POST /v1/widgets/create-call`)."""

    status = SuccessField()
    message = serializers.CharField()


class _NoBody:
    """`OpenApiResponse(NO_BODY, ...)`: a status answered with an empty body (e.g. a 416)."""


NO_BODY = _NoBody()

# For the views that create calls: the process carries MAX_CONCURRENT_CALLS (calls.capacity).
SERVER_BUSY = OpenApiResponse(
    description="This server carries as many calls as it may: try again after `Retry-After`."
)


def _is_bare(declared) -> bool:
    if isinstance(declared, OpenApiResponse):
        declared = declared.response
    declared = force_instance(declared)
    child = getattr(declared, "child", None)  # a ListSerializer
    return isinstance(declared, BareBody) or isinstance(child, BareBody)


class EnvelopeAutoSchema(AutoSchema):
    def get_description(self) -> str:
        # Only the view's own docstring (or its method's): inherited ones, such as OrgAPIView's,
        # would describe every operation. Then the scope an API key needs, where there is one.
        handler = getattr(self.view, self.method.lower(), None)
        doc = inspect.getdoc(handler) if handler is not None else None
        if not doc:
            doc = inspect.cleandoc(type(self.view).__dict__.get("__doc__") or "")
        scope = required_scope(self.view, self.method)
        if scope:
            doc = f"{doc}\n\nAPI key scope: `{scope}`.".strip()
        return doc

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for code, description in self._error_statuses(operation).items():
            responses.setdefault(code, self._error_response(code, description))
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _error_statuses(self, operation: dict) -> dict[str, str]:
        """The error statuses this operation can give whatever the view does."""
        locations = {parameter["in"] for parameter in operation.get("parameters", [])}
        takes_body = "requestBody" in operation
        statuses = []
        if takes_body or "query" in locations:
            statuses.append("400")
        if any(requirement for requirement in operation.get("security", [])):
            statuses += ["401", "403"]
        if "path" in locations:
            statuses.append("404")
        if self.method in BODY_METHODS:
            statuses.append("413")
        if takes_body:
            statuses.append("415")
        if self.view.get_throttles():
            statuses.append("429")
        statuses.append("500")
        return {code: ERROR_DESCRIPTIONS[code] for code in statuses}

    def _error_response(self, code: str, description: str) -> dict:
        response: dict[str, Any] = {
            "description": description,
            "content": {JSON: {"schema": self._component("Error", ERROR_SCHEMA)}},
        }
        if code in ("429", "503"):
            response["headers"] = copy.deepcopy(RETRY_AFTER)
        return response

    def _component(self, name: str, schema: dict) -> dict:
        # A copy: drf-spectacular's postprocessing hooks rewrite component schemas in place
        # (enums become references), and the next generation must start from the original.
        component = ResolvedComponent(
            name=name,
            type=ResolvedComponent.SCHEMA,
            object=f"envelope.{name}",
            schema=copy.deepcopy(schema),
        )
        self.registry.register_on_missing(component)
        return component.ref

    def _map_serializer(self, serializer, direction, bypass_extensions=False):
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        # A strict serializer refuses fields it does not know (a 400 naming them): its request
        # schema says so. Not where it has read-only fields, which it reads and ignores.
        if (
            direction == "request"
            and isinstance(serializer, StrictSerializerMixin)
            and not any(field.read_only for field in serializer.fields.values())
        ):
            schema["additionalProperties"] = False
        return schema

    def _get_response_bodies(self, direction="response"):
        declared = self.get_response_serializers()
        if self.method == "DELETE" and not isinstance(declared, dict):
            # Deletes answer 200 with `data: null`; drf-spectacular's default is a bare 204.
            return {"200": self._get_response_for_code(declared, "200", direction=direction)}
        return super()._get_response_bodies(direction)

    def _get_response_for_code(
        self, serializer, status_code, media_types=None, direction="response"
    ):
        if isinstance(serializer, OpenApiResponse) and serializer.response is NO_BODY:
            return {"description": serializer.description}
        response = super()._get_response_for_code(serializer, status_code, media_types, direction)
        code = int(status_code)
        content = response.get("content")
        if 200 <= code < 300 and not _is_bare(serializer):
            if content is None:
                # Nothing declared: a delete's data is null; otherwise `data` is undescribed.
                deleted = self.method == "DELETE"
                data = copy.deepcopy(NULL_DATA) if deleted else None
                response["content"] = {JSON: {"schema": self._envelope(data)}}
                if response.get("description") in ("", NO_RESPONSE_BODY):
                    response["description"] = "Deleted; `data` is null." if deleted else "Done."
            elif JSON in content:
                content[JSON]["schema"] = self._envelope(content[JSON]["schema"])
        elif code >= 400 and content is None:
            description = response.get("description")
            if description in (None, "", NO_RESPONSE_BODY):
                description = ERROR_DESCRIPTIONS.get(status_code, "An error.")
            response = {**response, **self._error_response(status_code, description)}
        return response

    def _envelope(self, data: dict | None) -> dict:
        """`data` in the success envelope; a list (an array) adds the page's `meta`."""
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                "status": {"type": "boolean", "enum": [True]},
                "message": {"type": "string"},
                "data": data if data is not None else {"description": "Not described."},
            },
            "required": ["status", "message", "data"],
        }
        if data is not None and data.get("type") == "array":
            schema["properties"]["meta"] = self._component("PageMeta", PAGE_META_SCHEMA)
            schema["required"].append("meta")
        if data is not None:
            # Exactly these keys, where `data` is described (an undescribed one may be a list
            # with `meta`).
            schema["additionalProperties"] = False
        return schema
