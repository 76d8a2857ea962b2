"""Ending a call over the REST API (`POST /v1/calls/{id}/end` and `/cancel`).

A running call lives in one process (its socket's consumer and runtime), not necessarily the
one that answers the request. So the view does not end it: it sends
`{"type": "call.control", "action": "end"|"cancel"}` to the channel-layer group
`call_control_group(call_id)`, which the call socket's consumer joins before it claims the
call, and the answer is 202. Nothing is lost when no process runs the call:

- a call nobody has connected to yet (queued, or a phone call still ringing; unclaimed) is
  ended here, at once, `failed` with `canceled`, by either action (there is no conversation
  to say goodbye to; a phone call is then hung up at its provider, which reacts to
  `call.ended`);
- a claimed or in-progress call whose process died ends through the reaper
  (`server_restart`), as it would without the request.
"""

from __future__ import annotations

from enum import StrEnum

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from calls import services
from calls.models import Call
from calls.vocabulary import CallStatus, EndReason

#: The channel-layer message type (Channels maps it to a consumer's `call_control` handler).
CONTROL_MESSAGE_TYPE = "call.control"


class ControlAction(StrEnum):
    END = "end"  # say the goodbye line (if any), then end `completed` / `api_end`
    CANCEL = "cancel"  # stop at once, `failed` / `canceled`


def call_control_group(call_id: str) -> str:
    return f"call.{call_id}.control"


class CallAlreadyEnded(Exception):
    """The call has ended already; `status` is its terminal status."""

    def __init__(self, status: str):
        super().__init__(f"The call has already ended ({status}).")
        self.status = status


def call_request_stop(*, call: Call, action: ControlAction) -> bool:
    """Stop `call` as `action` says. Returns True when it ended here (synchronously), False
    when the process running it was asked to (it ends asynchronously). CallAlreadyEnded when
    it had ended before."""
    if call.is_terminal:
        raise CallAlreadyEnded(call.status)
    if call.status in (CallStatus.QUEUED, CallStatus.RINGING) and call.connected_at is None:
        # Nobody has connected: no process holds it. A client claiming it at this very moment
        # is refused (4409: the claim only takes a queued call) or, if it claimed first, finds
        # the call ended at its hello and is told so.
        if services.call_end(call_id=call.pk, reason=EndReason.CANCELED):
            return True
        call.refresh_from_db()
        if call.is_terminal:
            raise CallAlreadyEnded(call.status)
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(
            call_control_group(call.pk), {"type": CONTROL_MESSAGE_TYPE, "action": str(action)}
        )
    return False
