"""What webhooks do when a call event is recorded."""

from __future__ import annotations

from calls.models import CallEvent
from webhooks.services import deliveries_create_for_event


def on_event_recorded(sender, *, event: CallEvent, **kwargs) -> None:
    """`calls.events.event_recorded` receiver, inside the event's transaction: the delivery
    rows commit or roll back with the event, and are queued once it commits."""
    deliveries_create_for_event(event=event)
