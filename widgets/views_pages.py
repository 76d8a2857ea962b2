"""HTML pages: the demo host page that embeds a widget from another origin."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpResponse
from django.shortcuts import render

from accounts.ids import is_object_id
from widgets.models import Widget

DEMO_ORGANIZATION = "Demo"


def _other_origin(request) -> str:
    """The same server under its other loopback name, so the demo is a cross-origin embed."""
    host = request.get_host()
    name, _, port = host.partition(":")
    other = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(name, name)
    return f"{request.scheme}://{other}{':' + port if port else ''}"


def demo_page(request) -> HttpResponse:
    """The demo organization's first widget, or its widget `?widget=ID`; any organization's
    widget only with DJANGO_DEBUG (development). Anything else is a 404: this public page on
    the server's own origin must not host other organizations' widgets."""
    widgets = Widget.objects.all()
    if not settings.DEBUG:
        widgets = widgets.filter(organization__name=DEMO_ORGANIZATION)
    widget_id = request.GET.get("widget")
    if widget_id is None:
        widget = widgets.order_by("created_at").first()
    else:
        widget = widgets.filter(pk=widget_id).first() if is_object_id(widget_id) else None
        if widget is None:
            raise Http404("No such demo widget.")
    return render(
        request,
        "demo.html",
        {
            "widget": widget,
            "widget_base": _other_origin(request),
            "page_origin": f"{request.scheme}://{request.get_host()}",
        },
    )
