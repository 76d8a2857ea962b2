from __future__ import annotations

import hashlib

from django.core.validators import MaxValueValidator
from django.db import models

from accounts.ids import new_object_id
from accounts.models import Organization
from assistants.models import Assistant
from widgets.validators import validate_color

MAX_RADIUS = 64


class Placement(models.TextChoices):
    """Where the widget shows on the host page."""

    FLOATING = "floating", "Floating (a launcher button in a corner opens the card)"
    INLINE = "inline", "Inline (the card where the tag is, or in data-container)"


class Position(models.TextChoices):
    """The corner of a floating widget."""

    BOTTOM_RIGHT = "bottom-right", "Bottom right"
    BOTTOM_LEFT = "bottom-left", "Bottom left"
    TOP_RIGHT = "top-right", "Top right"
    TOP_LEFT = "top-left", "Top left"


DEFAULTS = {
    "background_color": "#FFFFFF",
    "text_color": "#111827",
    "button_color": "#0EA5E9",
    "button_text_color": "#FFFFFF",
    "border_color": "#E5E7EB",
    "focus_outline_color": "#38BDF8",
    "card_radius": 12,
    "button_radius": 8,
    "start_call_button": "Start call",
    "end_call_button": "End call",
    "call_to_action": "Talk to our assistant",
    "terms_and_condition": False,
    "terms_and_condition_content": "",
    "placement": Placement.FLOATING,
    "position": Position.BOTTOM_RIGHT,
}


class Widget(models.Model):
    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="widgets")
    assistant = models.ForeignKey(
        Assistant, null=True, blank=True, on_delete=models.SET_NULL, related_name="widgets"
    )
    background_color = models.CharField(
        max_length=7, default=DEFAULTS["background_color"], validators=[validate_color]
    )
    text_color = models.CharField(
        max_length=7, default=DEFAULTS["text_color"], validators=[validate_color]
    )
    button_color = models.CharField(
        max_length=7, default=DEFAULTS["button_color"], validators=[validate_color]
    )
    button_text_color = models.CharField(
        max_length=7, default=DEFAULTS["button_text_color"], validators=[validate_color]
    )
    border_color = models.CharField(
        max_length=7, default=DEFAULTS["border_color"], validators=[validate_color]
    )
    focus_outline_color = models.CharField(
        max_length=7, default=DEFAULTS["focus_outline_color"], validators=[validate_color]
    )
    card_radius = models.PositiveSmallIntegerField(
        default=DEFAULTS["card_radius"], validators=[MaxValueValidator(MAX_RADIUS)]
    )
    button_radius = models.PositiveSmallIntegerField(
        default=DEFAULTS["button_radius"], validators=[MaxValueValidator(MAX_RADIUS)]
    )
    start_call_button = models.CharField(max_length=40, default=DEFAULTS["start_call_button"])
    end_call_button = models.CharField(max_length=40, default=DEFAULTS["end_call_button"])
    call_to_action = models.CharField(max_length=120, default=DEFAULTS["call_to_action"])
    terms_and_condition = models.BooleanField(default=False)
    terms_and_condition_content = models.TextField(blank=True, max_length=5000)
    placement = models.CharField(
        max_length=16, choices=Placement.choices, default=DEFAULTS["placement"]
    )
    position = models.CharField(
        max_length=16, choices=Position.choices, default=DEFAULTS["position"]
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.call_to_action} ({self.id})"

    @property
    def allowed_origin_list(self) -> list[str]:
        return [o.origin for o in self.allowed_origins.all()]

    def origin_allowed(self, origin: str | None) -> bool:
        if not origin:
            return False
        return self.allowed_origins.filter(origin=origin.lower()).exists()

    @property
    def terms_sha256(self) -> str:
        return hashlib.sha256(self.terms_and_condition_content.encode()).hexdigest()


class WidgetOrigin(models.Model):
    """One exact origin (scheme://host[:port]) a widget may be embedded on."""

    widget = models.ForeignKey(Widget, on_delete=models.CASCADE, related_name="allowed_origins")
    origin = models.CharField(max_length=300, db_index=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["widget", "origin"], name="unique_widget_origin")
        ]

    def __str__(self) -> str:
        return self.origin
