"""WebSocket routes. Origin checks are per widget, so they live in the consumers."""

from __future__ import annotations

websocket_urlpatterns: list = []
