"""Reads for calls."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Organization
from calls.models import Call
from calls.vocabulary import CallStatus


def calls_for(*, organization: Organization) -> QuerySet[Call]:
    return Call.objects.filter(organization=organization)


def call_list(*, organization: Organization, filters: dict) -> QuerySet[Call]:
    calls = calls_for(organization=organization)
    if filters.get("status"):
        calls = calls.filter(status=filters["status"])
    if filters.get("type"):
        calls = calls.filter(type=filters["type"])
    if filters.get("assistant"):
        calls = calls.filter(assistant_id=filters["assistant"])
    if filters.get("widget"):
        calls = calls.filter(widget_id=filters["widget"])
    if filters.get("created_after"):
        calls = calls.filter(created_at__gte=filters["created_after"])
    if filters.get("created_before"):
        calls = calls.filter(created_at__lte=filters["created_before"])
    return calls


def transcript_status(call: Call, entry_count: int) -> str:
    if call.status in (CallStatus.QUEUED, CallStatus.RINGING):
        return "pending"
    if call.status == CallStatus.IN_PROGRESS:
        return "in_progress"
    return "ready" if entry_count else "empty"
