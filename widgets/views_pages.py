"""HTML pages: the demo host page that embeds a widget from another origin."""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render

from widgets.models import Widget

DEMO_ORGANIZATION = "Demo"


def _other_origin(request) -> str:
    """The same server under its other loopback name, so the demo is a cross-origin embed."""
    host = request.get_host()
    name, _, port = host.partition(":")
    other = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(name, name)
    return f"{request.scheme}://{other}{':' + port if port else ''}"


def demo_page(request) -> HttpResponse:
    widget_id = request.GET.get("widget", "")
    widget = Widget.objects.filter(pk=widget_id).first() if widget_id else None
    if widget is None:
        widget = (
            Widget.objects.filter(organization__name=DEMO_ORGANIZATION)
            .order_by("created_at")
            .first()
        )
    return render(
        request,
        "demo.html",
        {
            "widget": widget,
            "widget_base": _other_origin(request),
            "page_origin": f"{request.scheme}://{request.get_host()}",
        },
    )
