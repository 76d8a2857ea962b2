"""First middleware: refuses hostile request shapes before any other work is done.

- a body over DATA_UPLOAD_MAX_MEMORY_SIZE: 413 (also when no Content-Length was sent: Django
  then measures the buffered body), never Django's RequestDataTooBig traceback;
- a NUL in the path: 404 (nothing has such a name, and PostgreSQL refuses NUL in a query);
- a NUL in a query parameter's name or value: 400 naming the parameter.

Under /v1/ answers use the API's error envelope; elsewhere plain responses.
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

from accounts.errors import error_body, json_not_found, too_large_response

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/v1/")


def _too_large(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return too_large_response()
    return HttpResponse("Request body too large.", status=413, content_type="text/plain")


def _nul_parameter(request: HttpRequest) -> str | None:
    for name, values in request.GET.lists():
        if "\x00" in name:
            return "query"  # the name itself is not echoed
        if any("\x00" in value for value in values):
            return name
    return None


class RequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path_info:
            return json_not_found(request)
        try:
            parameter = _nul_parameter(request)
        except TooManyFieldsSent:
            return self._bad_query(request, "query", "Too many query parameters.")
        if parameter is not None:
            return self._bad_query(
                request, parameter, "Query parameters may not contain NUL characters."
            )
        content_type = request.META.get("CONTENT_TYPE", "")
        # Multipart uploads are streamed by Django's own parser (file parts do not count against
        # the limit); every other body is read now, which applies Django's size check.
        if request.method in BODY_METHODS and not content_type.startswith("multipart/"):
            try:
                body = request.body
            except RequestDataTooBig:
                return _too_large(request)
            if body and not request.META.get("CONTENT_LENGTH"):
                # A chunked body: Django has it all now. DRF reads no body without a length.
                request.META["CONTENT_LENGTH"] = str(len(body))
        return self.get_response(request)

    @staticmethod
    def _bad_query(request: HttpRequest, parameter: str, message: str) -> HttpResponse:
        if _is_api(request):
            return JsonResponse(
                error_body(f"Invalid {parameter}: {message}", {parameter: [message]}), status=400
            )
        return HttpResponseBadRequest(message, content_type="text/plain")

    def process_exception(self, request: HttpRequest, exception: Exception):
        # Raised later by a form parser reading request.POST (multipart fields over the limit).
        if isinstance(exception, RequestDataTooBig):
            return _too_large(request)
        return None
