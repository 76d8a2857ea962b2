"""The realtime gateway a client connects to after creating a call."""

from __future__ import annotations

from urllib.parse import urlencode

from calls.models import Call

GATEWAY_PATH = "/new-web-call/connection"


def gateway_for(*, request, call: Call, token: str) -> dict[str, str]:
    """`ws(s)://` plus the host the client used (proxy headers only when trusted in settings)."""
    scheme = "wss" if request.is_secure() else "ws"
    query = urlencode({"assistant_id": call.assistant_id, "call_id": call.id, "token": token})
    return {
        "transport": "websocket",
        "path": GATEWAY_PATH,
        "url": f"{scheme}://{request.get_host()}{GATEWAY_PATH}?{query}",
    }
