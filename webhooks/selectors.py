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


def deliveries_by_event(organization_id: str, event_ids: list[str]) -> dict[str, list]:
    """The deliveries made of these events, by event id (for the call console)."""
    found: dict[str, list] = {}
    for delivery in WebhookDelivery.objects.filter(
        organization_id=organization_id, event_id__in=event_ids
    ).select_related("endpoint"):
        found.setdefault(delivery.event_id, []).append(delivery)
    return found
