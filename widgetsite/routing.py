"""WebSocket routes. Origin checks are per widget/call, so they live in the consumers."""

from __future__ import annotations

from django.urls import path

from calls.consumers import WebCallConsumer
from calls.live_consumer import LiveCallConsumer
from telephony.media import TwilioStreamConsumer
from telephony.twilio_client import STREAM_PATH

websocket_urlpatterns = [
    path("new-web-call/connection", WebCallConsumer.as_asgi()),
    path("ws/calls/<str:call_id>", LiveCallConsumer.as_asgi()),
    path(STREAM_PATH.lstrip("/"), TwilioStreamConsumer.as_asgi()),
]
