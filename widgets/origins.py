"""Which browser origins may use a widget."""

from __future__ import annotations

from django.http import HttpRequest

from widgets.models import Widget, WidgetOrigin


def own_origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}".lower()


def origin_allowed(*, widget: Widget, origin: str | None, own: str = "") -> bool:
    """True for an origin in the widget's list, and for `own`, this server's own origin (its
    pages, e.g. the admin preview). One rule for create-call and for the call socket."""
    if not origin:
        return False
    origin = origin.lower()
    if own and origin == own.lower():
        return True
    return widget.origin_allowed(origin)


def origin_allowed_anywhere(origin: str) -> bool:
    return WidgetOrigin.objects.filter(origin=origin.lower()).exists()
