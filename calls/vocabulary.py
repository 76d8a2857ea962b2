"""The calls' vocabulary, defined once: statuses (with seed 000's numbers), end reasons and
event types. The API, the admin, the runtime and the engine glue use these; the call socket's
close codes and message types live beside them in `calls.protocol`."""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class CallStatus(models.TextChoices):
    QUEUED = "queued"
    RINGING = "ringing"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    CANCELED = "canceled"


# The calls API reports status as a number (seed 000: `"status": 1`) next to its name; the
# first four keep seed 000's numbers, the phone statuses follow.
STATUS_CODES: dict[str, int] = {
    CallStatus.QUEUED: 0,
    CallStatus.IN_PROGRESS: 1,
    CallStatus.COMPLETED: 2,
    CallStatus.FAILED: 3,
    CallStatus.RINGING: 4,
    CallStatus.NO_ANSWER: 5,
    CallStatus.BUSY: 6,
    CallStatus.CANCELED: 7,
}
LIVE_STATUSES = (CallStatus.QUEUED, CallStatus.RINGING, CallStatus.IN_PROGRESS)
TERMINAL_STATUSES = (
    CallStatus.COMPLETED,
    CallStatus.FAILED,
    CallStatus.NO_ANSWER,
    CallStatus.BUSY,
    CallStatus.CANCELED,
)


class CallType(models.TextChoices):
    WEB = "web"
    OUTBOUND_PHONE = "outbound_phone"  # placed by POST /v1/calls/phone/initiate (telephony)
    INBOUND_PHONE = "inbound_phone"  # answered on a phone number's voice webhook (telephony)


class EndReason(StrEnum):
    """Why a call ended. The engine's own reasons (`voice.events.END_REASONS`) are a subset."""

    HANGUP = "hangup"  # the caller hung up
    ASSISTANT_ENDED = "assistant_ended"  # the assistant said goodbye
    MAX_DURATION = "max_duration"
    SILENCE_TIMEOUT = "silence_timeout"
    CLIENT_GONE = "client_gone"  # the socket closed without a hang-up
    CONNECTION_LOST = "connection_lost"  # the WebRTC peer failed, or its media stopped
    ERROR = "error"  # a server error
    NO_HELLO = "no_hello"  # connected, but the client never said hello
    SERVER_BUSY = "server_busy"  # hello refused: the process carries MAX_CONCURRENT_CALLS (4503)
    SERVER_RESTART = "server_restart"  # the process running it is gone (reaper)
    NEVER_CONNECTED = "never_connected"  # the token expired before anyone connected (reaper)
    API_END = "api_end"  # ended over the REST API
    CANCELED = "canceled"  # canceled over the REST API, or by the phone provider
    # Phone calls (telephony): how the provider reported the call's end before it was answered.
    BUSY = "busy"  # the callee's line was busy
    NO_ANSWER = "no_answer"  # nobody answered
    PROVIDER_FAILED = "provider_failed"  # the provider could not connect the call
    PLACEMENT_FAILED = "placement_failed"  # the provider's API refused or could not be reached


# Reasons that still count as a completed call; every other reason ends it `failed`.
COMPLETED_REASONS = frozenset(
    {
        EndReason.HANGUP,
        EndReason.ASSISTANT_ENDED,
        EndReason.MAX_DURATION,
        EndReason.SILENCE_TIMEOUT,
        EndReason.CLIENT_GONE,
        EndReason.CONNECTION_LOST,
        EndReason.API_END,
    }
)


def status_for_reason(reason: str) -> CallStatus:
    return CallStatus.COMPLETED if reason in COMPLETED_REASONS else CallStatus.FAILED


class EventType(StrEnum):
    """Call events: recorded once by `calls.services`, published after commit (see
    `calls.events`), delivered to webhooks and live subscribers."""

    CALL_CREATED = "call.created"
    CALL_STARTED = "call.started"
    CALL_STATUS_CHANGED = "call.status_changed"
    TRANSCRIPT_FINAL = "transcript.final"
    CALL_ENDED = "call.ended"
    CALL_ANALYZED = "call.analyzed"


class AnalysisStatus(models.TextChoices):
    """Where a call's post-call analysis stands (`calls.analysis`)."""

    PENDING = "pending"  # not ended yet, or queued after `call.ended`
    PROCESSING = "processing"  # claimed by a worker
    READY = "ready"
    FAILED = "failed"  # the error is kept in `analysis_error`
    SKIPPED = "skipped"  # nothing to analyse (the reason is in `analysis_error`)
    DISABLED = "disabled"  # the assistant's analysis plan is off


class Role(models.TextChoices):
    USER = "user"
    ASSISTANT = "assistant"
