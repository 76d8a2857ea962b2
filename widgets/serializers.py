from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api import StrictSerializerMixin
from accounts.fields import (
    ObjectIdField,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
)
from accounts.openapi import BareBody
from assistants.models import Assistant
from widgets.models import MAX_RADIUS, Placement, Position, Widget
from widgets.validators import COLOR_RE, normalize_origin, validate_color, validate_plain_text

COLOR_FIELDS = (
    "background_color",
    "text_color",
    "button_color",
    "button_text_color",
    "border_color",
    "focus_outline_color",
)
MAX_ORIGINS = 50


def _django_to_drf(func, value, **kwargs):
    try:
        return func(value, **kwargs)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from exc


@extend_schema_field({"type": "string", "pattern": COLOR_RE.pattern, "example": "#0EA5E9"})
class ColorField(StrictCharField):
    def to_internal_value(self, data):
        return _django_to_drf(validate_color, super().to_internal_value(data))


class StrictChoiceField(serializers.ChoiceField):
    """One of the choices, as a string (no coercion of numbers or booleans)."""

    def __init__(self, choices, **kwargs):
        super().__init__(choices, **kwargs)
        names = ", ".join(str(value) for value, _ in choices)
        self.error_messages["invalid_choice"] = f"Must be one of: {names}."

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        return super().to_internal_value(data)


class PlainTextField(StrictCharField):
    def __init__(self, *, multiline: bool = False, **kwargs):
        self.multiline = multiline
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if self.multiline:  # Windows and old Mac line endings: one newline each
            value = value.replace("\r\n", "\n").replace("\r", "\n")
        return _django_to_drf(validate_plain_text, value, multiline=self.multiline)


class OriginListField(serializers.ListField):
    child = StrictCharField(max_length=300)

    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise serializers.ValidationError(
                "Must be a list of origins like https://app.example.com."
            )
        if len(data) > MAX_ORIGINS:
            raise serializers.ValidationError(f"At most {MAX_ORIGINS} origins.")
        values = super().to_internal_value(data)
        return list(dict.fromkeys(_django_to_drf(normalize_origin, v) for v in values))


class WidgetWriteSerializer(StrictSerializerMixin, serializers.Serializer):
    """The update body of the widgets API (seed 001's UpdateWidgetDTO), every field optional."""

    assistantId = ObjectIdField(required=False, allow_null=True)  # noqa: N815
    background_color = ColorField(required=False)
    text_color = ColorField(required=False)
    button_color = ColorField(required=False)
    button_text_color = ColorField(required=False)
    border_color = ColorField(required=False)
    focus_outline_color = ColorField(required=False)
    card_radius = StrictIntegerField(required=False, min_value=0, max_value=MAX_RADIUS)
    button_radius = StrictIntegerField(required=False, min_value=0, max_value=MAX_RADIUS)
    start_call_button = PlainTextField(required=False, max_length=40)
    end_call_button = PlainTextField(required=False, max_length=40)
    call_to_action = PlainTextField(required=False, max_length=120)
    terms_and_condition = StrictBooleanField(required=False)
    terms_and_condition_content = PlainTextField(
        required=False, allow_blank=True, max_length=5000, multiline=True, trim_whitespace=False
    )
    placement = StrictChoiceField(choices=Placement.choices, required=False)
    position = StrictChoiceField(choices=Position.choices, required=False)
    allowed_origins = OriginListField(required=False)

    def __init__(self, *args, organization=None, **kwargs):
        self.organization = organization
        super().__init__(*args, **kwargs)

    def validate_assistantId(self, value):  # noqa: N802
        if value is None:
            return None
        assistant = Assistant.objects.filter(pk=value, organization=self.organization).first()
        if assistant is None:
            raise serializers.ValidationError("No assistant with this id in your organization.")
        return assistant

    def validate(self, attrs):
        if "assistantId" in attrs:
            attrs["assistant"] = attrs.pop("assistantId")
        return attrs


# What a widget shows: the same fields in the API and in the embed's public configuration.
APPEARANCE_FIELDS = (
    *COLOR_FIELDS,
    "card_radius",
    "button_radius",
    "start_call_button",
    "end_call_button",
    "call_to_action",
    "terms_and_condition",
    "terms_and_condition_content",
    "placement",
    "position",
)


class WidgetSerializer(serializers.ModelSerializer):
    """A widget as the API shows it (seed 001), with the snippet that embeds it on a page
    served from `context["embed_base"]` (this server's scheme and host)."""

    assistantId = serializers.CharField(source="assistant_id", allow_null=True, read_only=True)  # noqa: N815
    allowed_origins = serializers.ListField(
        child=serializers.CharField(), source="allowed_origin_list", read_only=True
    )
    embed_code = serializers.SerializerMethodField()

    class Meta:
        model = Widget
        fields = [
            "id",
            "assistantId",
            *APPEARANCE_FIELDS,
            "allowed_origins",
            "created_at",
            "updated_at",
            "embed_code",
        ]
        read_only_fields = ["id", *APPEARANCE_FIELDS, "created_at", "updated_at"]

    def get_embed_code(self, widget: Widget) -> str:
        return embed_snippet(widget, self.context["embed_base"])


def embed_snippet(widget: Widget, base_url: str) -> str:
    return (
        f'<script src="{base_url}/static/widget/embed.js" '
        f'data-widget-id="{widget.id}" async></script>'
    )


class WidgetPublicConfigSerializer(BareBody, serializers.ModelSerializer):
    """What the embed script needs to render: appearance and texts, nothing private. The
    whole body (no envelope); `context["origin_allowed"]` says whether the asking page's
    origin may start calls."""

    terms_sha256 = serializers.CharField(read_only=True)
    language = serializers.SerializerMethodField()
    available = serializers.SerializerMethodField()
    origin_allowed = serializers.SerializerMethodField()

    class Meta:
        model = Widget
        fields = [
            "id",
            *APPEARANCE_FIELDS,
            "terms_sha256",
            "language",
            "available",
            "origin_allowed",
        ]
        read_only_fields = ["id", *APPEARANCE_FIELDS]

    def get_language(self, widget: Widget) -> str:
        """The assistant's language (the widget's built-in texts follow it), "" without one."""
        return widget.assistant.language if widget.assistant_id else ""

    def get_available(self, widget: Widget) -> bool:
        """Whether calls can start: the widget has an assistant, and it is enabled."""
        return bool(widget.assistant_id and widget.assistant.enabled)

    def get_origin_allowed(self, widget: Widget) -> bool:
        return self.context["origin_allowed"]
