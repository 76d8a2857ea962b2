"""Writes for calls: creation with a gateway token."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Organization
from assistants.models import Assistant
from calls.models import Call, CallType
from calls.tokens import hash_gateway_token, new_gateway_token
from widgets.models import Widget


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
