"""The events an endpoint can subscribe to: the call events, defined once in calls.vocabulary."""

from __future__ import annotations

from calls.vocabulary import EventType

ALL_EVENTS = "*"
#: Sent by POST /v1/webhooks/{id}/test to one endpoint; not subscribable.
PING = "ping"
EVENT_TYPES: tuple[str, ...] = tuple(t.value for t in EventType)
