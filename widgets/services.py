"""Writes for widgets."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import Organization
from widgets.models import Widget, WidgetOrigin


def _set_origins(widget: Widget, origins: list[str]) -> None:
    widget.allowed_origins.all().delete()
    WidgetOrigin.objects.bulk_create(
        WidgetOrigin(widget=widget, origin=origin, position=i) for i, origin in enumerate(origins)
    )


@transaction.atomic
def widget_create(*, organization: Organization, data: dict[str, Any] | None = None) -> Widget:
    data = dict(data or {})
    origins = data.pop("allowed_origins", [])
    widget = Widget.objects.create(organization=organization, **data)
    _set_origins(widget, origins)
    return widget


@transaction.atomic
def widget_update(*, widget: Widget, data: dict[str, Any]) -> Widget:
    data = dict(data)
    origins = data.pop("allowed_origins", None)
    for field, value in data.items():
        setattr(widget, field, value)
    widget.save()
    if origins is not None:
        _set_origins(widget, origins)
    return widget


def widget_delete(*, widget: Widget) -> None:
    widget.delete()
