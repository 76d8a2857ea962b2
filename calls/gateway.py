"""The realtime gateway a client connects to after creating a call."""

from __future__ import annotations

from urllib.parse import urlencode

from calls.models import Call
from calls.protocol import CloseCode, LiveMessage

GATEWAY_PATH = "/new-web-call/connection"
LIVE_PATH = "/ws/calls/{call_id}"


def gateway_for(*, request, call: Call, token: str) -> dict[str, str]:
    """`ws(s)://` plus the host the client used (proxy headers only when trusted in settings)."""
    scheme = "wss" if request.is_secure() else "ws"
    query = urlencode({"assistant_id": call.assistant_id, "call_id": call.id, "token": token})
    return {
        "transport": "websocket",
        "path": GATEWAY_PATH,
        "url": f"{scheme}://{request.get_host()}{GATEWAY_PATH}?{query}",
    }


def live_socket_info(*, request, call: Call) -> dict:
    """Seed 002's `websocket_url` and `connection_info` for a call's live transcript socket."""
    scheme = "wss" if request.is_secure() else "ws"
    url = f"{scheme}://{request.get_host()}{LIVE_PATH.format(call_id=call.id)}"
    return {
        "websocket_url": url,
        "connection_info": {
            "url": url,
            "auth_method": "query_param",
            "auth_param": "api_key",
            "temp_auth_param": "session_token",
            "subprotocol_auth": (
                "The session token may instead be sent as the Sec-WebSocket-Protocol value "
                "(new WebSocket(url, [token])); the server echoes it on accept."
            ),
            "example": f"{url}?api_key=YOUR_API_KEY",
            "example_session": f"{url}?session_token=TEMP_TOKEN",
            "message_format": "json",
            "message_types": [
                LiveMessage.CONNECTED,
                LiveMessage.TRANSCRIPT_UPDATE,
                LiveMessage.CALL_STATUS_UPDATE,
                LiveMessage.ERROR,
            ],
            "close_codes": {
                str(int(CloseCode.NORMAL)): "the call ended (after its last update)",
                str(int(CloseCode.BAD_CREDENTIALS)): "bad API key or bad, used or expired token",
                str(int(CloseCode.MISSING_SCOPE)): "the API key lacks calls:read",
                str(int(CloseCode.UNKNOWN_CALL)): "unknown call (or another organization's)",
                str(int(CloseCode.TOO_BIG)): "message too big",
                str(int(CloseCode.FLOODING)): "too many messages",
            },
        },
    }
