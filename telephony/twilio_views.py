"""Twilio's requests to this server: call status callbacks and the numbers' voice webhook.

Not API-key views: Twilio authenticates them with `X-Twilio-Signature`, checked with the SDK's
`RequestValidator` and the account's auth token against PUBLIC_BASE_URL + the request's path
(exactly the URL Twilio was given). A bad or missing signature is a 403 and changes nothing.
Twilio posts form-encoded bodies; there is no CSRF token to check."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from telephony import twilio_client
from telephony.models import TwilioAccount
from telephony.selectors import phone_number_by_number, twilio_call_for
from telephony.services import (
    SIGNATURE_HEADER,
    call_status_apply,
    inbound_call_answer,
    request_signature_valid,
)

TWIML = "text/xml; charset=utf-8"


def forbidden() -> HttpResponse:
    return HttpResponse(
        "Forbidden: not a valid Twilio request.\n", status=403, content_type="text/plain"
    )


def twiml(body: str) -> HttpResponse:
    return HttpResponse(body, content_type=TWIML)


def signed(request: HttpRequest, account: TwilioAccount | None) -> bool:
    """Twilio's signature for this request with this account's token (and the account's own
    SID in the body, when Twilio sends it)."""
    if account is None:
        return False
    sent_sid = request.POST.get("AccountSid")
    if sent_sid is not None and sent_sid != account.account_sid:
        return False
    return request_signature_valid(
        account=account,
        url=twilio_client.public_url(request.get_full_path()),
        params=request.POST,
        signature=request.headers.get(SIGNATURE_HEADER, ""),
    )


@csrf_exempt
@require_POST
def status_callback(request: HttpRequest, call_id: str | None = None) -> HttpResponse:
    """`POST /v1/telephony/twilio/status/{call_id}` (the URL outbound calls are placed with),
    or `POST /v1/telephony/twilio/status` (a number's status callback: found by CallSid)."""
    call_sid = request.POST.get("CallSid", "")
    link = twilio_call_for(call_id=call_id, call_sid=call_sid)
    if link is None or not signed(request, link.account):
        return forbidden()
    known_sid = link.call.provider_call_sid
    if known_sid and call_sid and call_sid != known_sid:
        return HttpResponse(status=204)  # signed, but about another Twilio call: ignored
    call_status_apply(
        call_id=link.call_id,
        provider_status=request.POST.get("CallStatus", ""),
        call_sid=call_sid,
    )
    return HttpResponse(status=204)


@csrf_exempt
@require_POST
def voice_webhook(request: HttpRequest) -> HttpResponse:
    """`POST /v1/telephony/twilio/voice`: a call to one of our numbers. Answers TwiML that
    connects a media stream to the number's assistant; an unknown number is rejected."""
    number = phone_number_by_number(request.POST.get("To", ""))
    if number is None:
        return twiml(twilio_client.reject_twiml())
    if not signed(request, number.twilio_account):
        return forbidden()
    return twiml(
        inbound_call_answer(
            phone_number=number,
            call_sid=request.POST.get("CallSid", ""),
            from_number=request.POST.get("From", ""),
            to_number=number.number,
        )
    )
