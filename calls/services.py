"""Writes for calls: creation with a gateway token."""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from accounts.ids import is_object_id
from accounts.models import Organization
from assistants.models import Assistant
from calls.events import event_record
from calls.models import Call, CallTurn, TranscriptEntry
from calls.protocol import CloseCode
from calls.tokens import hash_gateway_token, new_gateway_token
from calls.vocabulary import (
    LIVE_STATUSES,
    CallStatus,
    CallType,
    EndReason,
    EventType,
    status_for_reason,
)
from widgets.models import Widget
from widgets.origins import origin_allowed


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def recording_url(call: Call) -> str | None:
    return f"/v1/calls/{call.id}/recording" if call.recording else None


class CallNotAllowed(Exception):
    """The call cannot be created as asked (no assistant, disabled assistant, ...)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def assistant_check_callable(assistant: Assistant | None) -> Assistant:
    if assistant is None:
        raise CallNotAllowed(
            "This widget has no assistant; set assistantId on the widget.", "widget_id"
        )
    if not assistant.enabled:
        raise CallNotAllowed("The assistant is disabled.", "assistantId")
    return assistant


@transaction.atomic
def call_create(
    *,
    organization: Organization,
    assistant: Assistant,
    widget: Widget | None = None,
    call_type: str = CallType.WEB,
    origin: str = "",
    consent: dict[str, Any] | None = None,
    variables: dict[str, str] | None = None,
    from_number: str = "",
    to_number: str = "",
    provider_call_sid: str = "",
) -> tuple[Call, str]:
    """Create a queued call and the single-use token its client connects with."""
    assistant_check_callable(assistant)
    token = new_gateway_token()
    call = Call.objects.create(
        organization=organization,
        assistant=assistant,
        widget=widget,
        type=call_type,
        origin=origin,
        consent=consent,
        variables=variables or {},
        from_number=from_number,
        to_number=to_number,
        provider_call_sid=provider_call_sid,
        token_hash=hash_gateway_token(token),
        token_expires_at=timezone.now() + timedelta(seconds=settings.CALL_TOKEN_TTL_SECONDS),
    )
    event_record(
        call=call,
        type=EventType.CALL_CREATED,
        payload={
            "call_id": call.id,
            "type": call.type,
            "status": call.status,
            "assistant_id": call.assistant_id,
            "widget_id": call.widget_id,
            "variables": call.variables,
        },
    )
    return call, token


# --- The realtime side: claiming the gateway, the call's lifecycle, what it reports. ---

HEARTBEAT_STALE_SECONDS = 30
# A token used at the last moment races the reaper; a little grace keeps that race away.
NEVER_CONNECTED_GRACE_SECONDS = 15


class GatewayRefused(Exception):
    """The call socket cannot be used; `code` is the WebSocket close code to send."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _claim_checks(
    call: Call | None, *, assistant_id: str, token: str, origin: str, own: str
) -> Call:
    if call is None or call.assistant_id != assistant_id:
        raise GatewayRefused(4404, "Unknown call.")
    if call.status != CallStatus.QUEUED or call.connected_at is not None:
        raise GatewayRefused(4409, "This call is already connected or has ended.")
    if not call.token_hash or not hmac.compare_digest(call.token_hash, hash_gateway_token(token)):
        raise GatewayRefused(4401, "Bad token.")
    if call.token_expires_at is None or call.token_expires_at <= timezone.now():
        raise GatewayRefused(4401, "Expired token: create the call again.")
    if call.origin:
        # A call created from a web page is only joined from that page's origin (the token,
        # single-use, was handed to that page), and only while the widget still allows it: the
        # rule create-call applied. The one page it allowed outside allowed_origins is this
        # server's own (the admin's live preview, for a signed-in staff user of the widget's
        # organization): it recorded that origin as the call's, and only that origin joins.
        allowed = origin.lower() == call.origin and (
            call.widget is None
            or call.origin == own
            or origin_allowed(widget=call.widget, origin=origin)
        )
        if not allowed:
            raise GatewayRefused(4403, f"Origin {origin or '(none)'} is not allowed for this call.")
    elif (
        origin and call.widget is not None and not origin_allowed(widget=call.widget, origin=origin)
    ):
        raise GatewayRefused(4403, f"Origin {origin} is not allowed for this widget.")
    return call


def call_claim(
    *, call_id: str, assistant_id: str, token: str, origin: str, own_origin: str = ""
) -> Call:
    """Check the gateway token and origin and mark the call connected, exactly once.

    `own_origin` is this server's origin as the client reached it (its own pages may call)."""
    if not (is_object_id(call_id) and is_object_id(assistant_id) and token):
        raise GatewayRefused(CloseCode.BAD_REQUEST, "assistant_id, call_id and token are required.")
    call = Call.objects.select_related("assistant", "widget").filter(pk=call_id).first()
    call = _claim_checks(
        call, assistant_id=assistant_id, token=token, origin=origin, own=own_origin
    )
    now = timezone.now()
    # The heartbeat says which claimed calls still have a live process: one that is gone
    # before the hello leaves its call to the reaper (calls_reap_orphans).
    claimed = Call.objects.filter(
        pk=call.pk, status=CallStatus.QUEUED, connected_at__isnull=True, token_hash=call.token_hash
    ).update(connected_at=now, heartbeat_at=now, token_hash="")
    if not claimed:
        raise GatewayRefused(
            CloseCode.ALREADY_CONNECTED, "This call is already connected or has ended."
        )
    call.connected_at = call.heartbeat_at = now
    call.token_hash = ""
    return call


def _status_changed(call: Call, old: str) -> None:
    event_record(
        call=call,
        type=EventType.CALL_STATUS_CHANGED,
        payload={"call_id": call.id, "from": old, "to": call.status},
    )


@transaction.atomic
def call_start(*, call: Call, transport: str) -> bool:
    """The conversation begins. Returns False when the call was no longer waiting to start.

    A phone call is answered before its media stream starts: the provider's "answered"
    callback starts it with no ``transport`` (""), and the stream's start then joins it
    (True, nothing recorded twice). A call already started with a transport is not
    started again."""
    now = timezone.now()
    locked = (
        Call.objects.select_for_update()
        .filter(
            pk=call.pk,
            status__in=[CallStatus.QUEUED, CallStatus.RINGING, CallStatus.IN_PROGRESS],
        )
        .first()
    )
    if locked is None:
        return False
    if locked.status == CallStatus.IN_PROGRESS:
        if locked.transport or not transport:
            return False
        locked.transport = transport
        locked.save(update_fields=["transport", "updated_at"])
        call.status, call.started_at, call.transport = locked.status, locked.started_at, transport
        return True
    old = locked.status
    locked.status, locked.started_at, locked.heartbeat_at = CallStatus.IN_PROGRESS, now, now
    locked.transport = transport
    locked.save(update_fields=["status", "started_at", "heartbeat_at", "transport", "updated_at"])
    call.status, call.started_at, call.transport = locked.status, now, transport
    _status_changed(locked, old)
    event_record(
        call=locked,
        type=EventType.CALL_STARTED,
        payload={"call_id": call.id, "transport": transport, "started_at": _iso(now)},
    )
    return True


def call_token_issue(*, call_id: str, ttl_seconds: int) -> str | None:
    """A new single-use connect token for a call nobody has connected to yet (a phone call's
    media stream connects when the callee answers, later than a browser would); the previous
    token stops working. None when the call is already connected or has ended."""
    token = new_gateway_token()
    issued = Call.objects.filter(
        pk=call_id, status__in=LIVE_STATUSES, connected_at__isnull=True
    ).update(
        token_hash=hash_gateway_token(token),
        token_expires_at=timezone.now() + timedelta(seconds=ttl_seconds),
        updated_at=timezone.now(),
    )
    return token if issued else None


@transaction.atomic
def call_mark_ringing(*, call_id: str) -> bool:
    """A queued phone call is ringing at the far end. Returns False when it was not queued
    (already ringing, answered or ended: a late report never moves a call backwards)."""
    call = Call.objects.select_for_update().filter(pk=call_id, status=CallStatus.QUEUED).first()
    if call is None:
        return False
    call.status = CallStatus.RINGING
    call.save(update_fields=["status", "updated_at"])
    _status_changed(call, CallStatus.QUEUED)
    return True


def call_end_reason(*, call_id: str) -> str:
    """The stored end reason ("" while the call is live)."""
    return Call.objects.filter(pk=call_id).values_list("end_reason", flat=True).first() or ""


def call_heartbeat(*, call_id: str) -> None:
    Call.objects.filter(pk=call_id, status=CallStatus.IN_PROGRESS).update(
        heartbeat_at=timezone.now()
    )


TRANSCRIPT_EXCERPT_CHARS = 500


def _transcript_excerpt(call: Call) -> str:
    lines = [f"{e.role}: {e.text}" for e in call.transcript.order_by("seq")[:20]]
    text = "\n".join(lines)
    return (
        text
        if len(text) <= TRANSCRIPT_EXCERPT_CHARS
        else text[: TRANSCRIPT_EXCERPT_CHARS - 1] + "…"
    )


def call_end(
    *, call_id: str, reason: str, recording_name: str = "", status: str | None = None
) -> bool:
    """Move a call to its terminal state, exactly once: the one place a call ends, and the one
    `call.ended` event. `status` defaults to what the reason implies (completed or failed).
    Returns False if the call had already ended."""
    status = status or status_for_reason(reason)
    with transaction.atomic():
        call = Call.objects.select_for_update().filter(pk=call_id, status__in=LIVE_STATUSES).first()
        if call is None:
            return False
        old = call.status
        now = timezone.now()
        call.status = status
        call.end_reason = reason
        call.ended_at = now
        call.token_hash = ""
        if call.started_at:
            call.duration_seconds = round((now - call.started_at).total_seconds(), 3)
        if recording_name:
            call.recording.name = recording_name
        call.save()
        _status_changed(call, old)
        event_record(
            call=call,
            type=EventType.CALL_ENDED,
            payload={
                "call_id": call.id,
                "status": call.status,
                "end_reason": reason,
                "duration": call.duration_seconds,
                "started_at": _iso(call.started_at),
                "ended_at": _iso(now),
                "transcript_excerpt": _transcript_excerpt(call),
                "recording_url": recording_url(call),
            },
        )
    return True


def transcript_append(
    *,
    call_id: str,
    role: str,
    text: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
    interrupted: bool = False,
    source: dict[str, Any] | None = None,
) -> TranscriptEntry:
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call_id)
        last = TranscriptEntry.objects.filter(call_id=call_id).aggregate(m=Max("seq"))["m"]
        entry = TranscriptEntry.objects.create(
            call_id=call_id,
            seq=(last or 0) + 1,
            role=role,
            text=text,
            start_ms=start_ms,
            end_ms=end_ms,
            interrupted=interrupted,
            source=source if isinstance(source, dict) else None,
        )
        event_record(
            call=call,
            type=EventType.TRANSCRIPT_FINAL,
            payload={
                "call_id": call_id,
                "seq": entry.seq,
                "role": role,
                "text": text,
                "start_ms": start_ms,
                "end_ms": end_ms,
                "interrupted": interrupted,
            },
        )
        return entry


def turn_record(*, call_id: str, index: int, timings: dict[str, Any]) -> None:
    CallTurn.objects.update_or_create(call_id=call_id, index=index, defaults={"timings": timings})


def calls_reap_orphans(
    *,
    stale_seconds: int = HEARTBEAT_STALE_SECONDS,
    grace_seconds: int = NEVER_CONNECTED_GRACE_SECONDS,
) -> int:
    """End the calls no process will end; returns how many. Pure: no threads, no state.

    - in progress without a heartbeat for `stale_seconds`: its process is gone
      (`failed`, `server_restart`);
    - connected (claimed) but no hello, heartbeat stamped at claim older than
      `stale_seconds`: a live process ends such a call itself within the hello timeout
      (`no_hello`), so its process is gone (`failed`, `server_restart`);
    - queued and never connected, its token expired more than `grace_seconds` ago
      (`failed`, `never_connected`)."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_seconds)
    stale = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    rules = (
        (Q(status=CallStatus.IN_PROGRESS) & stale, EndReason.SERVER_RESTART),
        (
            Q(status=CallStatus.QUEUED, connected_at__isnull=False)
            # Claimed before heartbeats were stamped at claim: the connection time tells.
            & (Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, connected_at__lt=cutoff)),
            EndReason.SERVER_RESTART,
        ),
        (
            Q(
                status=CallStatus.QUEUED,
                connected_at__isnull=True,
                token_expires_at__lt=now - timedelta(seconds=grace_seconds),
            ),
            EndReason.NEVER_CONNECTED,
        ),
    )
    count = 0
    for condition, reason in rules:
        for call_id in Call.objects.filter(condition).values_list("pk", flat=True):
            count += call_end(call_id=call_id, reason=reason)
    return count
