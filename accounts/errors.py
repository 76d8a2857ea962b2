"""One error envelope for the whole API: {"status": false, "message": ..., "errors": ...}."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.views.defaults import page_not_found
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


def _flatten(detail, prefix: str = "") -> list[tuple[str, str]]:
    """(field path, message) pairs from DRF's nested error detail."""
    if isinstance(detail, dict):
        pairs: list[tuple[str, str]] = []
        for key, value in detail.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            pairs.extend(_flatten(value, path))
        return pairs
    if isinstance(detail, list):
        pairs = []
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                pairs.extend(_flatten(value, f"{prefix}[{index}]" if prefix else str(index)))
            else:
                pairs.append((prefix, str(value)))
        return pairs
    return [(prefix, str(detail))]


def validation_message(detail) -> str:
    pairs = _flatten(detail)
    fields = [f for f, _ in pairs if f and f != "non_field_errors"]
    if not pairs:
        return "Invalid request."
    first_field, first_message = pairs[0]
    if fields:
        unique = list(dict.fromkeys(fields))
        return (
            f"Invalid {', '.join(unique)}: {first_message}"
            if len(unique) == 1
            else (f"Invalid fields {', '.join(unique)}. {first_field}: {first_message}")
        )
    return first_message


def error_body(message: str, errors=None) -> dict:
    body = {"status": False, "message": message}
    if errors is not None:
        body["errors"] = errors
    return body


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"

    def __init__(self):
        super().__init__(too_large_message())


def too_large_message() -> str:
    return f"Request body too large: at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."


def too_large_response() -> JsonResponse:
    return JsonResponse(error_body(too_large_message()), status=413)


def envelope_exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in %s", context.get("view").__class__.__name__)
        return Response(
            error_body("Internal server error."), status=status.HTTP_500_INTERNAL_SERVER_ERROR
        )
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, list):
            detail = {"non_field_errors": detail}
        response.data = error_body(validation_message(detail), detail)
    elif isinstance(exc, exceptions.APIException):
        detail = exc.detail
        message = str(detail) if not isinstance(detail, dict | list) else validation_message(detail)
        response.data = error_body(message)
    return response


def json_not_found(request, exception=None):
    """JSON 404s under /v1/, Django's page elsewhere (admin, demo)."""
    if not request.path.startswith("/v1/"):
        return page_not_found(request, exception)
    return JsonResponse(error_body("Not found."), status=404)


def json_server_error(request):
    return JsonResponse(error_body("Internal server error."), status=500)
