"""Reads for webhook endpoints and their delivery log."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Organization
from webhooks.models import WebhookDelivery, WebhookEndpoint


def endpoints_for(*, organization: Organization) -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.filter(organization=organization)


def delivery_list(*, endpoint: WebhookEndpoint, filters: dict) -> QuerySet[WebhookDelivery]:
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).prefetch_related("attempts")
    if filters.get("status"):
        deliveries = deliveries.filter(status=filters["status"])
    if filters.get("event_type"):
        deliveries = deliveries.filter(event_type=filters["event_type"])
    return deliveries
