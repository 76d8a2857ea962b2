"""Telephony reacts to call events (it is never called by `calls`): a Twilio call that ends
here - the assistant said goodbye, the REST API ended it, a timeout, an error - is hung up at
Twilio too. One that Twilio ended itself (its status callback said so) is left alone."""

from __future__ import annotations

from calls.models import CallEvent
from calls.vocabulary import EndReason, EventType


def call_event_recorded(sender, event: CallEvent, **kwargs) -> None:
    if event.type != EventType.CALL_ENDED or event.payload.get("end_reason") == EndReason.HANGUP:
        return  # the far end hung up: nothing to end at Twilio
    from telephony.models import TwilioCall
    from telephony.services import TWILIO_TERMINAL, hangup

    link = TwilioCall.objects.select_related("call").filter(pk=event.call_id).first()
    if link is None or not link.call.provider_call_sid:
        return  # not a Twilio call, or not placed yet (call_place hangs it up once placed)
    if link.last_provider_status in TWILIO_TERMINAL:
        return
    hangup(link.call)
