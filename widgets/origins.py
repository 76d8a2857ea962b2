"""Which browser origins may use a widget."""

from __future__ import annotations

from django.http import HttpRequest

from widgets.models import Widget, WidgetOrigin


def own_origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}".lower()


def origin_allowed(
    *, widget: Widget, origin: str | None, request: HttpRequest | None = None
) -> bool:
    """True for an origin in the widget's list (and this server's own pages, e.g. the admin)."""
    if not origin:
        return False
    origin = origin.lower()
    if request is not None and origin == own_origin(request):
        return True
    return widget.origin_allowed(origin)


def origin_allowed_anywhere(origin: str) -> bool:
    return WidgetOrigin.objects.filter(origin=origin.lower()).exists()
