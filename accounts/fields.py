"""Serializer fields that refuse wrong JSON types instead of coercing them."""

from __future__ import annotations

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.ids import is_object_id


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {"invalid": "A whole number is required."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictDictField(serializers.DictField):
    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_a_dict", input_type=type(data).__name__)
        return super().to_internal_value(data)


class ObjectIdField(StrictCharField):
    """An object id in a body: 24 lower-case hex characters, checked before any query."""

    default_error_messages = {"invalid": "Must be an id: 24 lower-case hex characters."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 24)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not is_object_id(value):
            self.fail("invalid")
        return value


# Bounds of a free-form settings object (voice_settings, dtmf_rules): the API stores what it
# is given, so it must be small.
FREE_FORM_MAX_KEYS = 50
FREE_FORM_MAX_KEY_LENGTH = 64
FREE_FORM_MAX_DEPTH = 4
FREE_FORM_MAX_BYTES = 16 * 1024


def _free_form_problem(value, depth: int) -> str | None:
    """Why a JSON value at `depth` breaks the bounds (depth, keys per object, key length)."""
    if not isinstance(value, dict | list):
        return None
    if depth > FREE_FORM_MAX_DEPTH:
        return f"Nested deeper than {FREE_FORM_MAX_DEPTH} levels."
    items = value
    if isinstance(value, dict):
        if len(value) > FREE_FORM_MAX_KEYS:
            return f"At most {FREE_FORM_MAX_KEYS} keys per object."
        if any(not key or len(key) > FREE_FORM_MAX_KEY_LENGTH for key in value):
            return f"Keys must be 1-{FREE_FORM_MAX_KEY_LENGTH} characters."
        items = value.values()
    for item in items:
        problem = _free_form_problem(item, depth + 1)
        if problem:
            return problem
    return None


@extend_schema_field(OpenApiTypes.OBJECT)
class FreeFormObjectField(serializers.JSONField):
    """A JSON object of settings the platform stores as given: at most FREE_FORM_MAX_KEYS keys
    per object, keys of 1-64 characters, FREE_FORM_MAX_DEPTH levels (the object itself is the
    first), FREE_FORM_MAX_BYTES of compact JSON."""

    default_error_messages = {"not_a_dict": "Must be a JSON object."}

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            self.fail("not_a_dict")
        problem = _free_form_problem(data, 1)
        if problem:
            raise serializers.ValidationError(problem)
        size = len(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode())
        if size > FREE_FORM_MAX_BYTES:
            raise serializers.ValidationError(
                f"At most {FREE_FORM_MAX_BYTES} bytes of JSON ({size} sent)."
            )
        return data


class OptionalChoiceField(serializers.ChoiceField):
    """A choice stored as "" while there is none: shown as null."""

    def __init__(self, choices, **kwargs):
        super().__init__(choices, allow_null=True, read_only=True, **kwargs)

    def to_representation(self, value):
        return super().to_representation(value) if value else None


class OptionalCharField(serializers.CharField):
    """Text stored as "" while there is none: shown as null."""

    def __init__(self, **kwargs):
        super().__init__(allow_null=True, read_only=True, **kwargs)

    def to_representation(self, value):
        return super().to_representation(value) if value else None
