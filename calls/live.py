"""The live transcript socket's side of the data: session tokens, who may subscribe to which
call, and how call events read as the socket's messages (seed 002's `connected`,
`transcript_update`, `call_status_update`). The socket itself is
`calls.live_consumer.LiveCallConsumer`; README.md ("The live transcript socket") describes
it for client authors."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from accounts.ids import is_object_id
from accounts.selectors import api_key_for_secret
from calls.events import event_representation
from calls.models import Call, CallEvent, LiveSessionToken
from calls.protocol import CloseCode, LiveMessage
from calls.tokens import hash_gateway_token, new_gateway_token
from calls.vocabulary import STATUS_CODES, CallStatus, EventType

#: How long a session token can be redeemed (connecting); the subscription then lasts as
#: long as the socket does.
SESSION_TOKEN_TTL_SECONDS = 5 * 60
READ_SCOPE = "calls:read"
STATUS_EVENTS = frozenset(
    {EventType.CALL_STATUS_CHANGED, EventType.CALL_STARTED, EventType.CALL_ENDED}
)


class LiveRefused(Exception):
    """The subscription is refused; `code` is the WebSocket close code to send."""

    def __init__(self, code: CloseCode, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def session_token_issue(*, call: Call) -> tuple[str, datetime]:
    """A new single-use token for `call`'s live socket and until when it can be redeemed;
    only its hash is stored. Spent and expired tokens of the call are dropped meanwhile."""
    now = timezone.now()
    LiveSessionToken.objects.filter(call=call).filter(
        Q(used_at__isnull=False) | Q(expires_at__lte=now)
    ).delete()
    token = new_gateway_token()
    expires_at = now + timedelta(seconds=SESSION_TOKEN_TTL_SECONDS)
    LiveSessionToken.objects.create(
        call=call, token_hash=hash_gateway_token(token), expires_at=expires_at
    )
    return token, expires_at


def _redeem(call_id: str, token: str) -> bool:
    """Use the token, exactly once: one conditional update, so two sockets racing with the
    same token cannot both win. A token of another call is not used up."""
    now = timezone.now()
    return bool(
        LiveSessionToken.objects.filter(
            token_hash=hash_gateway_token(token),
            call_id=call_id,
            used_at__isnull=True,
            expires_at__gt=now,
        ).update(used_at=now)
    )


def live_authorize(*, call_id: str, api_key: str = "", session_token: str = "") -> Call:
    """The call a subscriber may follow, or LiveRefused: 4401 without valid credentials, 4403
    for a key without `calls:read`, 4404 for an unknown call or another organization's."""
    if not (api_key or session_token):
        raise LiveRefused(
            CloseCode.BAD_CREDENTIALS,
            "Send ?api_key=KEY or ?session_token=TOKEN (or the token as the subprotocol).",
        )
    call = (
        Call.objects.filter(pk=call_id).only("id", "organization_id", "status").first()
        if is_object_id(call_id)
        else None
    )
    if api_key:
        key = api_key_for_secret(secret=api_key)
        if key is None:
            raise LiveRefused(CloseCode.BAD_CREDENTIALS, "Invalid or revoked API key.")
        if not key.has_scope(READ_SCOPE):
            raise LiveRefused(
                CloseCode.MISSING_SCOPE, f"This API key lacks the required scope: {READ_SCOPE}"
            )
        if call is None or call.organization_id != key.organization_id:
            raise LiveRefused(CloseCode.UNKNOWN_CALL, "Unknown call.")
        return call
    if call is None:
        raise LiveRefused(CloseCode.UNKNOWN_CALL, "Unknown call.")
    if not _redeem(call.pk, session_token):
        raise LiveRefused(
            CloseCode.BAD_CREDENTIALS,
            "Bad, used or expired session token: ask GET /v1/calls/{id}/live for a new one.",
        )
    return call


def call_snapshot(*, call_id: str) -> tuple[str, list[dict[str, Any]]]:
    """The call's status and every event recorded so far, oldest first. The status is the one
    the events tell (every status change records one), so the two always agree."""
    events = [event_representation(e) for e in CallEvent.objects.filter(call_id=call_id)]
    status = ""
    for event in events:
        data = event["data"] or {}
        if event["type"] == EventType.CALL_CREATED:
            status = data.get("status") or status
        elif event["type"] == EventType.CALL_STATUS_CHANGED:
            status = data.get("to") or status
    if not status:  # a call from before events were recorded
        status = Call.objects.filter(pk=call_id).values_list("status", flat=True).first() or ""
    return status, events


def events_after(*, call_id: str, seq: int) -> list[dict[str, Any]]:
    """Events with a sequence number above `seq` (to fill a gap in what was published)."""
    rows = CallEvent.objects.filter(call_id=call_id, seq__gt=seq).order_by("seq")
    return [event_representation(e) for e in rows]


def status_fields(status: str) -> dict[str, Any]:
    return {"status": status, "status_code": STATUS_CODES.get(status)}


def connected_message(*, call_id: str, status: str, events: list[dict]) -> dict[str, Any]:
    return {
        "type": LiveMessage.CONNECTED,
        "data": {"call_id": call_id, **status_fields(status), "events": events},
    }


def update_for(event: dict[str, Any]) -> dict[str, Any] | None:
    """The live message an event becomes, or None (events subscribers need not follow live,
    such as `call.created`; they are in `connected`'s `events`)."""
    kind, data = event["type"], event.get("data") or {}
    common = {"call_id": event["call_id"], "event_seq": event["seq"], "event_id": event["id"]}
    if kind == EventType.TRANSCRIPT_FINAL:
        return {
            "type": LiveMessage.TRANSCRIPT_UPDATE,
            "data": {
                **common,
                "seq": data.get("seq"),  # the transcript line's number (1, 2, ...)
                "role": data.get("role"),
                "text": data.get("text"),
                "transcript": data.get("text"),  # seed 002 reads `data.transcript`
                "final": True,
                "start_ms": data.get("start_ms"),
                "end_ms": data.get("end_ms"),
                "interrupted": data.get("interrupted", False),
                "created_at": event["created_at"],
            },
        }
    if kind not in STATUS_EVENTS:
        return None
    if kind == EventType.CALL_STATUS_CHANGED:
        status, extra = data.get("to"), {"previous_status": data.get("from")}
    elif kind == EventType.CALL_STARTED:
        status = CallStatus.IN_PROGRESS
        extra = {"started_at": data.get("started_at"), "transport": data.get("transport")}
    else:  # call.ended
        status = data.get("status")
        extra = {key: data.get(key) for key in ("end_reason", "duration", "started_at", "ended_at")}
    return {
        "type": LiveMessage.CALL_STATUS_UPDATE,
        "data": {**common, "event": kind, **status_fields(status), **extra},
    }
