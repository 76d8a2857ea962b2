from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api import MAX_LIMIT, MAX_OFFSET, StrictSerializerMixin
from accounts.fields import OptionalCharField, StrictBooleanField, StrictCharField
from webhooks.catalog import ALL_EVENTS, EVENT_TYPES
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import (
    InvalidEventTypes,
    InvalidWebhookURL,
    events_normalize,
    webhook_url_check,
)

MAX_EVENTS = 50


class WebhookURLField(StrictCharField):
    """An https URL (http with WEBHOOK_ALLOW_HTTP) that the outbound guard accepts."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        try:
            return webhook_url_check(value)
        except InvalidWebhookURL as exc:
            raise serializers.ValidationError(str(exc)) from exc


class EventTypesField(serializers.ListField):
    child = StrictCharField(max_length=64)

    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise serializers.ValidationError(
                f'Must be a list of event types, or ["{ALL_EVENTS}"] (or []) for all.'
            )
        if len(data) > MAX_EVENTS:
            raise serializers.ValidationError(f"At most {MAX_EVENTS} event types.")
        values = super().to_internal_value(data)
        try:
            return events_normalize(values)
        except InvalidEventTypes as exc:
            raise serializers.ValidationError(str(exc)) from exc


class WebhookEndpointWriteSerializer(StrictSerializerMixin, serializers.Serializer):
    """Create (url required) or update (partial) a webhook endpoint."""

    url = WebhookURLField(max_length=2000, help_text="https URL that receives the POSTs.")
    description = StrictCharField(max_length=500, required=False, allow_blank=True)
    events = EventTypesField(
        required=False,
        help_text=f'Subscribed types from: {", ".join(EVENT_TYPES)}; [] or ["*"] for all.',
    )
    enabled = StrictBooleanField(required=False)


class DeliveryListQuery(StrictSerializerMixin, serializers.Serializer):
    status = serializers.ChoiceField(choices=DeliveryStatus.choices, required=False)
    event_type = serializers.CharField(required=False, max_length=64)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, required=False)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, required=False)


class ReplayFailedSerializer(StrictSerializerMixin, serializers.Serializer):
    since = serializers.DateTimeField(
        help_text="Replay failed deliveries created at or after this ISO 8601 date-time."
    )


class WebhookEndpointSerializer(serializers.Serializer):
    """A webhook endpoint as the API shows it (never its secret)."""

    id = serializers.CharField(read_only=True)
    url = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    events = serializers.SerializerMethodField(
        help_text=f'Subscribed event types; ["{ALL_EVENTS}"] means all.'
    )
    enabled = serializers.BooleanField(read_only=True)
    disabled_reason = OptionalCharField(help_text="Why it was disabled (410, 5 days failing).")
    disabled_at = serializers.DateTimeField(read_only=True, allow_null=True)
    failing_since = serializers.DateTimeField(read_only=True, allow_null=True)
    last_success_at = serializers.DateTimeField(read_only=True, allow_null=True)
    secret_rotated_at = serializers.DateTimeField(read_only=True, allow_null=True)
    previous_secret_expires_at = serializers.DateTimeField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_events(self, endpoint: WebhookEndpoint) -> list[str]:
        return endpoint.events or [ALL_EVENTS]


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    """The create and rotate-secret answers: the signing secret, shown this once."""

    secret = serializers.SerializerMethodField(help_text="`whsec_...`: store it now.")

    def get_secret(self, endpoint: WebhookEndpoint) -> str:
        return self.context["secret"]


class WebhookAttemptSerializer(serializers.Serializer):
    number = serializers.IntegerField(read_only=True)
    attempted_at = serializers.DateTimeField(read_only=True)
    status_code = serializers.IntegerField(read_only=True, allow_null=True)
    latency_ms = serializers.IntegerField(read_only=True, allow_null=True)
    response_body = serializers.CharField(
        read_only=True, help_text="The first 1 KB of the receiver's answer."
    )
    error = OptionalCharField()
    outcome = serializers.CharField(read_only=True)


class WebhookDeliverySerializer(serializers.Serializer):
    id = serializers.CharField(read_only=True)
    webhook_id = serializers.CharField(source="endpoint_id", read_only=True)
    event_id = serializers.CharField(read_only=True, help_text="The `webhook-id` header.")
    event_type = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(choices=DeliveryStatus.choices, read_only=True)
    attempt_count = serializers.IntegerField(read_only=True)
    next_attempt_at = serializers.SerializerMethodField()
    last_status_code = serializers.IntegerField(read_only=True, allow_null=True)
    last_error = OptionalCharField()
    delivered_at = serializers.DateTimeField(read_only=True, allow_null=True)
    created_at = serializers.DateTimeField(read_only=True)
    attempts = WebhookAttemptSerializer(many=True, read_only=True, source="attempts.all")

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_next_attempt_at(self, delivery: WebhookDelivery) -> str | None:
        if delivery.status != DeliveryStatus.PENDING or delivery.next_attempt_at is None:
            return None
        return serializers.DateTimeField().to_representation(delivery.next_attempt_at)


class ReplayCountSerializer(serializers.Serializer):
    replayed = serializers.IntegerField(read_only=True)


def endpoint_representation(endpoint: WebhookEndpoint, *, secret: str | None = None) -> dict:
    """An endpoint as the API shows it; `secret` only in the create / rotate answers."""
    if secret is None:
        return WebhookEndpointSerializer(endpoint).data
    return WebhookEndpointWithSecretSerializer(endpoint, context={"secret": secret}).data


def delivery_representation(delivery: WebhookDelivery) -> dict:
    return WebhookDeliverySerializer(delivery).data
