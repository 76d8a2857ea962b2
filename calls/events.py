"""Call events: recorded by `calls.services` in the same transaction as the change they
describe, published after commit.

Only `event_record` writes events, and only the services call it. Subscribers:

- inside the transaction, `event_recorded` (a Django signal, keyword `event`) lets an app
  write its own rows atomically with the event (webhooks create their delivery rows there,
  so an event that committed is never without its deliveries);
- after commit, the event goes to the channel-layer groups `call_group(call_id)` and
  `organization_group(organization_id)` as `{"type": "call.event", "event": {...}}` (live
  sockets subscribe there). A lost publish loses nothing: the rows can be read back.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction
from django.db.models import Max
from django.dispatch import Signal

from calls.models import Call, CallEvent
from calls.vocabulary import EventType

logger = logging.getLogger(__name__)

#: Sent inside the recording transaction with `event=CallEvent`.
event_recorded = Signal()

#: The channel-layer message type (Channels maps it to a consumer's `call_event` handler).
CHANNEL_MESSAGE_TYPE = "call.event"


def call_group(call_id: str) -> str:
    return f"call.{call_id}"


def organization_group(organization_id: str) -> str:
    return f"org.{organization_id}"


def event_representation(event: CallEvent) -> dict[str, Any]:
    """The event as API, webhooks and live sockets show it."""
    return {
        "id": event.id,
        "type": event.type,
        "call_id": event.call_id,
        "organization_id": event.organization_id,
        "seq": event.seq,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": event.payload,
    }


def event_record(*, call: Call, type: EventType, payload: dict[str, Any]) -> CallEvent:
    """Record one event of `call`. Must run inside the transaction that makes the change, with
    the call's row locked (`select_for_update`) so sequence numbers never collide."""
    if transaction.get_autocommit():
        raise RuntimeError("event_record must run inside the transaction of the change")
    last = CallEvent.objects.filter(call_id=call.pk).aggregate(m=Max("seq"))["m"] or 0
    event = CallEvent.objects.create(
        organization_id=call.organization_id,
        call_id=call.pk,
        seq=last + 1,
        type=str(type),
        payload=payload,
    )
    event_recorded.send(sender=CallEvent, event=event)
    transaction.on_commit(lambda: publish(event))
    return event


def publish(event: CallEvent) -> None:
    """Send a committed event to its call's and organization's groups (best effort)."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": CHANNEL_MESSAGE_TYPE, "event": event_representation(event)}
    try:
        send = async_to_sync(layer.group_send)
        send(call_group(event.call_id), message)
        send(organization_group(event.organization_id), message)
    except Exception:  # the rows are the truth; a subscriber can read them back
        logger.warning("could not publish event %s (%s)", event.id, event.type, exc_info=True)
