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
from calls.models import Call, CallStatus, CallTurn, CallType, TranscriptEntry
from calls.tokens import hash_gateway_token, new_gateway_token
from widgets.models import Widget
from widgets.origins import origin_allowed


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
        token_hash=hash_gateway_token(token),
        token_expires_at=timezone.now() + timedelta(seconds=settings.CALL_TOKEN_TTL_SECONDS),
    )
    return call, token


# --- The realtime side: claiming the gateway, the call's lifecycle, what it reports. ---

# Reasons the engine ends a call with that still count as a completed call.
COMPLETED_REASONS = {
    "hangup",
    "assistant_ended",
    "max_duration",
    "silence_timeout",
    "client_gone",
    "connection_lost",
}
HEARTBEAT_STALE_SECONDS = 30


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
        # A call created from a web page is only joined from that page's origin, and only
        # while the widget still allows it (the same rule create-call applied).
        allowed = origin.lower() == call.origin and (
            call.widget is None or origin_allowed(widget=call.widget, origin=origin, own=own)
        )
        if not allowed:
            raise GatewayRefused(4403, f"Origin {origin or '(none)'} is not allowed for this call.")
    elif (
        origin
        and call.widget is not None
        and not origin_allowed(widget=call.widget, origin=origin, own=own)
    ):
        raise GatewayRefused(4403, f"Origin {origin} is not allowed for this widget.")
    return call


def call_claim(
    *, call_id: str, assistant_id: str, token: str, origin: str, own_origin: str = ""
) -> Call:
    """Check the gateway token and origin and mark the call connected, exactly once.

    `own_origin` is this server's origin as the client reached it (its own pages may call)."""
    if not (is_object_id(call_id) and is_object_id(assistant_id) and token):
        raise GatewayRefused(4400, "assistant_id, call_id and token are required.")
    call = Call.objects.select_related("assistant", "widget").filter(pk=call_id).first()
    call = _claim_checks(
        call, assistant_id=assistant_id, token=token, origin=origin, own=own_origin
    )
    now = timezone.now()
    claimed = Call.objects.filter(
        pk=call.pk, status=CallStatus.QUEUED, connected_at__isnull=True, token_hash=call.token_hash
    ).update(connected_at=now, token_hash="")
    if not claimed:
        raise GatewayRefused(4409, "This call is already connected or has ended.")
    call.connected_at = now
    call.token_hash = ""
    return call


def call_start(*, call: Call, transport: str) -> None:
    now = timezone.now()
    Call.objects.filter(pk=call.pk, status=CallStatus.QUEUED).update(
        status=CallStatus.IN_PROGRESS, started_at=now, heartbeat_at=now, transport=transport
    )
    call.status, call.started_at, call.transport = CallStatus.IN_PROGRESS, now, transport


def call_heartbeat(*, call_id: str) -> None:
    Call.objects.filter(pk=call_id, status=CallStatus.IN_PROGRESS).update(
        heartbeat_at=timezone.now()
    )


def call_end(*, call_id: str, reason: str, recording_name: str = "") -> bool:
    """Move a call to its terminal state. Returns False if it had already ended (exactly once)."""
    status = CallStatus.COMPLETED if reason in COMPLETED_REASONS else CallStatus.FAILED
    with transaction.atomic():
        call = (
            Call.objects.select_for_update()
            .filter(pk=call_id, status__in=[CallStatus.QUEUED, CallStatus.IN_PROGRESS])
            .first()
        )
        if call is None:
            return False
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
    return True


def transcript_append(
    *,
    call_id: str,
    role: str,
    text: str,
    start_ms: int | None = None,
    end_ms: int | None = None,
    interrupted: bool = False,
) -> TranscriptEntry:
    with transaction.atomic():
        Call.objects.select_for_update().filter(pk=call_id).first()
        last = TranscriptEntry.objects.filter(call_id=call_id).aggregate(m=Max("seq"))["m"]
        return TranscriptEntry.objects.create(
            call_id=call_id,
            seq=(last or 0) + 1,
            role=role,
            text=text,
            start_ms=start_ms,
            end_ms=end_ms,
            interrupted=interrupted,
        )


def turn_record(*, call_id: str, index: int, timings: dict[str, Any]) -> None:
    CallTurn.objects.update_or_create(call_id=call_id, index=index, defaults={"timings": timings})


def calls_reap_orphans(*, stale_seconds: int = HEARTBEAT_STALE_SECONDS) -> int:
    """Fail calls left in progress by a process that is gone (no heartbeat for a while)."""
    cutoff = timezone.now() - timedelta(seconds=stale_seconds)
    orphans = Call.objects.filter(status=CallStatus.IN_PROGRESS).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    )
    count = 0
    for call_id in orphans.values_list("pk", flat=True):
        count += call_end(call_id=call_id, reason="server_restart")
    return count
