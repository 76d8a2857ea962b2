"""Reads for telephony."""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.ids import is_object_id
from accounts.models import Organization
from telephony.models import PhoneNumber, TwilioAccount, TwilioCall


def twilio_accounts_for(*, organization: Organization) -> QuerySet[TwilioAccount]:
    return TwilioAccount.objects.filter(organization=organization)


def phone_numbers_for(*, organization: Organization) -> QuerySet[PhoneNumber]:
    return PhoneNumber.objects.filter(organization=organization).select_related(
        "twilio_account", "assistant"
    )


def phone_number_by_number(number: str) -> PhoneNumber | None:
    """The registered number (any organization's: numbers are unique), for Twilio's webhooks."""
    if not number:
        return None
    return (
        PhoneNumber.objects.select_related("organization", "twilio_account", "assistant")
        .filter(number=number)
        .first()
    )


def twilio_call_for(*, call_id: str | None = None, call_sid: str = "") -> TwilioCall | None:
    """A Twilio call by our call id, else by Twilio's CallSid."""
    calls = TwilioCall.objects.select_related("call", "account")
    if call_id is not None:
        return calls.filter(pk=call_id).first() if is_object_id(call_id) else None
    if not call_sid:
        return None
    return calls.filter(call__provider_call_sid=call_sid).first()
