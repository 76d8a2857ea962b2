from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api import MAX_OFFSET, StrictSerializerMixin
from accounts.fields import StrictCharField, StrictDictField
from accounts.ids import is_object_id
from calls.models import STATUS_CODES, Call, CallStatus, CallType

STATUS_BY_CODE = {str(code): status.value for status, code in STATUS_CODES.items()}
MAX_VARIABLES = 50


class VariablesField(StrictDictField):
    """Call variables for `{{name}}` substitution: a small flat object of strings."""

    child = serializers.CharField(max_length=1000, allow_blank=True)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) > MAX_VARIABLES:
            raise serializers.ValidationError(f"At most {MAX_VARIABLES} variables.")
        bad = [k for k in value if not k.replace("_", "").isalnum() or len(k) > 64]
        if bad:
            raise serializers.ValidationError(f"Invalid variable name(s): {', '.join(bad)}")
        return value


class InitiateCallSerializer(StrictSerializerMixin, serializers.Serializer):
    """Seed 000's InitiateCallDto, plus optional call variables."""

    assistantId = StrictCharField(max_length=24)  # noqa: N815
    type = StrictCharField(max_length=16)
    variables = VariablesField(required=False)

    def validate_type(self, value):
        if value != CallType.WEB:
            raise serializers.ValidationError(
                "Unsupported call type; only 'web' is available here."
            )
        return value


class ConsentSerializer(StrictSerializerMixin, serializers.Serializer):
    accepted = serializers.BooleanField()
    terms_sha256 = StrictCharField(max_length=64, required=False)


class CreateWidgetCallSerializer(StrictSerializerMixin, serializers.Serializer):
    """Seed 001's CreateConnectionDTO, plus the visitor's consent and call variables."""

    widget_id = StrictCharField(max_length=24)
    consent = ConsentSerializer(required=False)
    variables = VariablesField(required=False)


@extend_schema_field(OpenApiTypes.DATETIME)
class FlexibleDateTimeField(serializers.Field):
    """An ISO datetime, or a date (the start of the day, or its end with `end_of_day`)."""

    def __init__(self, *, end_of_day: bool = False, **kwargs):
        self.end_of_day = end_of_day
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = None
        if isinstance(data, str):
            try:
                # A bare date first: Python 3.11's fromisoformat (used by parse_datetime)
                # would read "2026-03-03" as midnight and lose `end_of_day`.
                day = parse_date(data)
                if day is not None:
                    time = dt.time.max if self.end_of_day else dt.time.min
                    value = dt.datetime.combine(day, time)
                else:
                    value = parse_datetime(data)
            except ValueError:  # well formed but impossible, e.g. month 13
                value = None
        if value is None:
            raise serializers.ValidationError("Must be an ISO 8601 date or datetime.")
        if timezone.is_naive(value):
            value = timezone.make_aware(value, dt.UTC)
        return value


class CallListQuery(StrictSerializerMixin, serializers.Serializer):
    status = serializers.CharField(required=False)
    type = serializers.ChoiceField(choices=CallType.choices, required=False)
    assistant = serializers.CharField(required=False)
    widget = serializers.CharField(required=False)
    created_after = FlexibleDateTimeField(required=False)
    created_before = FlexibleDateTimeField(required=False, end_of_day=True)
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, required=False)

    def validate_status(self, value):
        value = STATUS_BY_CODE.get(value, value)
        if value not in CallStatus.values:
            known = ", ".join(f"{s} ({STATUS_CODES[CallStatus(s)]})" for s in CallStatus.values)
            raise serializers.ValidationError(f"Unknown status; use one of: {known}.")
        return value

    def validate_assistant(self, value):
        if not is_object_id(value):
            raise serializers.ValidationError("Must be an assistant id.")
        return value

    def validate_widget(self, value):
        if not is_object_id(value):
            raise serializers.ValidationError("Must be a widget id.")
        return value

    def validate(self, attrs):
        after, before = attrs.get("created_after"), attrs.get("created_before")
        if after and before and after > before:
            raise serializers.ValidationError(
                {"created_after": ["Must not be after created_before."]}
            )
        return attrs


def _iso(value):
    return serializers.DateTimeField().to_representation(value) if value else None


def call_representation(call: Call) -> dict:
    return {
        "id": call.id,
        "type": call.type,
        "status": call.status_code,
        "status_label": call.status,
        "assistant_id": call.assistant_id,
        "widget_id": call.widget_id,
        "transport": call.transport or None,
        "end_reason": call.end_reason or None,
        "origin": call.origin or None,
        "variables": call.variables,
        "consent": call.consent,
        "created_at": _iso(call.created_at),
        "started_at": _iso(call.started_at),
        "ended_at": _iso(call.ended_at),
        "duration": call.duration_seconds,
        "recording_url": f"/v1/calls/{call.id}/recording" if call.recording else None,
    }


def transcript_entry_representation(entry) -> dict:
    return {
        "role": entry.role,
        "text": entry.text,
        "start_ms": entry.start_ms,
        "end_ms": entry.end_ms,
        "interrupted": entry.interrupted,
        "created_at": _iso(entry.created_at),
    }
