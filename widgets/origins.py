"""Which browser origins may use a widget: exactly those in its `allowed_origins`.

There is no exemption for this server's own origin: an empty list allows no page. The admin's
live preview (same origin as the server) is authorised by the staff session instead (see
calls.views.WidgetCreateCallView).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest

from widgets.models import Widget, WidgetOrigin
from widgets.validators import normalize_origin


def own_origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}".lower()


def _normalized(origin: str | None) -> str | None:
    """An Origin header as stored in allowed_origins, or None for anything that is not an
    origin (`null`, a NUL, a path...), which then matches nothing without a query."""
    if not origin:
        return None
    try:
        return normalize_origin(origin)
    except ValidationError:
        return None


def origin_allowed(*, widget: Widget, origin: str | None) -> bool:
    """One rule for create-call, the public configuration and the call socket."""
    origin = _normalized(origin)
    return origin is not None and widget.allowed_origins.filter(origin=origin).exists()


def origin_allowed_anywhere(origin: str) -> bool:
    origin = _normalized(origin)
    return origin is not None and WidgetOrigin.objects.filter(origin=origin).exists()
