from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.ids import new_object_id
from accounts.models import Organization
from assistants.models import Assistant
from calls.vocabulary import (
    STATUS_CODES,
    TERMINAL_STATUSES,
    AnalysisStatus,
    CallStatus,
    CallType,
    EventType,
    Role,
)
from widgets.models import Widget

ANALYSIS_STATUSES = tuple(AnalysisStatus.values)

# The vocabulary lives in calls.vocabulary; re-exported here where models are imported from.
__all__ = [
    "ANALYSIS_STATUSES",
    "STATUS_CODES",
    "AnalysisStatus",
    "TERMINAL_STATUSES",
    "Call",
    "CallEvent",
    "CallStatus",
    "CallTurn",
    "CallType",
    "EventType",
    "LiveSessionToken",
    "TranscriptEntry",
]


class CallQuerySet(models.QuerySet):
    def live(self) -> CallQuerySet:
        """In progress, or queued with a connect token that can still be used."""
        return self.filter(
            models.Q(status__in=[CallStatus.IN_PROGRESS, CallStatus.RINGING])
            | models.Q(status=CallStatus.QUEUED, token_expires_at__gt=timezone.now())
        )


class Call(models.Model):
    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="calls")
    assistant = models.ForeignKey(
        Assistant, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    widget = models.ForeignKey(
        Widget, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    type = models.CharField(max_length=16, choices=CallType.choices, default=CallType.WEB)
    status = models.CharField(
        max_length=16, choices=CallStatus.choices, default=CallStatus.QUEUED, db_index=True
    )
    end_reason = models.CharField(max_length=40, blank=True)
    transport = models.CharField(max_length=16, blank=True)
    origin = models.CharField(max_length=300, blank=True)
    # Phone calls: the numbers (E.164 for ours; the caller's as the provider gave it) and the
    # provider's id of the call (Twilio's CallSid), by which its callbacks find it.
    from_number = models.CharField(max_length=64, blank=True)
    to_number = models.CharField(max_length=64, blank=True)
    provider_call_sid = models.CharField(max_length=64, blank=True, db_index=True)
    consent = models.JSONField(null=True, blank=True)
    variables = models.JSONField(default=dict, blank=True)
    token_hash = models.CharField(max_length=64, blank=True, editable=False)
    token_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    connected_at = models.DateTimeField(null=True, blank=True)
    # Written every few seconds by the process running the call; a stale one means that
    # process is gone (see calls_reap_orphans).
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    recording = models.FileField(upload_to="recordings/", blank=True)
    # {"summary", "outcome", "extracted_data"} once ready (calls.analysis).
    analysis = models.JSONField(null=True, blank=True)
    analysis_status = models.CharField(
        max_length=16, choices=AnalysisStatus.choices, default=AnalysisStatus.PENDING
    )
    analysis_error = models.CharField(max_length=500, blank=True)
    # When the analysis was last queued or claimed: the sweeper re-queues one left
    # pending/processing long after this (a lost message, a worker that died).
    analysis_at = models.DateTimeField(null=True, blank=True, db_index=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CallQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.type} call {self.id} ({self.status})"

    @property
    def status_code(self) -> int:
        return STATUS_CODES[CallStatus(self.status)]

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class TranscriptEntry(models.Model):
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="transcript")
    seq = models.PositiveIntegerField()
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField()
    start_ms = models.PositiveIntegerField(null=True, blank=True)
    end_ms = models.PositiveIntegerField(null=True, blank=True)
    interrupted = models.BooleanField(default=False)
    # Where an assistant line came from, as the reply engine reported it: e.g. {"kind":
    # "answer", "entry": 2, "question": ..., "score": 0.69, "runner_up": 4, ...}.
    source = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["seq"]
        constraints = [models.UniqueConstraint(fields=["call", "seq"], name="unique_call_seq")]
        verbose_name_plural = "transcript entries"

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:60]}"


class CallTurn(models.Model):
    """Per-turn timings reported by the voice engine (milliseconds)."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="turns")
    index = models.PositiveIntegerField()
    timings = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["index"]
        constraints = [models.UniqueConstraint(fields=["call", "index"], name="unique_call_turn")]

    def __str__(self) -> str:
        return f"turn {self.index} of {self.call_id}"


class CallEvent(models.Model):
    """Something that happened to a call, recorded in the same transaction as the change.

    `id` is stable (it is the webhook-id of every delivery of it); `seq` orders a call's
    events (1, 2, ...). Written only by `calls.events.event_record`."""

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="call_events"
    )
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=40, choices=[(t.value, t.value) for t in EventType])
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["call", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["call", "seq"], name="unique_call_event_seq")
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.seq} of {self.call_id}"


class LiveSessionToken(models.Model):
    """A temporary credential for one call's live transcript socket (`GET /v1/calls/{id}/live`).

    Single-use, redeemable until `expires_at`; only its SHA-256 is stored, so a database
    leak reveals no usable token. Redeeming it stamps `used_at` (one atomic update)."""

    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="live_tokens")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    expires_at = models.DateTimeField(editable=False)
    used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"live token of {self.call_id} ({'used' if self.used_at else 'unused'})"
