"""Writes for telephony: Twilio accounts and phone numbers, placing and ending phone calls
through the official SDK, Twilio's status callbacks and voice webhook, and the media stream's
single-use token.

The functions the Media Streams consumer uses (synchronous, database: call them through
`database_sync_to_async` from async code):

- `stream_token_consume(call_id, token, signature=...)`: the call, claimed for this stream,
  or None (refuse the stream);
- `stream_signature_valid(call_id=..., signature=...)`: the handshake's X-Twilio-Signature;
- `hangup(call)`: end the call at Twilio (a job). Not needed after `calls.services.call_end`:
  every `call.ended` of a Twilio call that Twilio did not end itself hangs it up (receivers).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator

import jobs
from accounts.crypto import DecryptionError, decrypt, encrypt
from accounts.ids import is_object_id
from accounts.models import Organization
from assistants.models import Assistant
from calls.models import Call
from calls.services import (
    CallNotAllowed,
    call_create,
    call_end,
    call_mark_ringing,
    call_start,
    call_token_issue,
)
from calls.tokens import hash_gateway_token
from calls.vocabulary import LIVE_STATUSES, TERMINAL_STATUSES, CallStatus, CallType, EndReason
from telephony import twilio_client
from telephony.models import Direction, PhoneNumber, Provider, TwilioAccount, TwilioCall

logger = logging.getLogger(__name__)

PLACE = "telephony.services.call_place"
HANGUP = "telephony.services.call_hangup"
#: `Call.transport` of a call whose audio runs over a Twilio media stream (the stream records
#: it when it starts; Twilio's "answered" callback starts the call without one).
STREAM_TRANSPORT = "twilio"
PHONE_CALL_TYPES = (CallType.OUTBOUND_PHONE, CallType.INBOUND_PHONE)

#: Twilio's CallStatus -> ours (`answered` arrives as `in-progress`).
TWILIO_STATUSES: dict[str, CallStatus] = {
    "queued": CallStatus.QUEUED,
    "initiated": CallStatus.QUEUED,
    "ringing": CallStatus.RINGING,
    "in-progress": CallStatus.IN_PROGRESS,
    "completed": CallStatus.COMPLETED,
    "busy": CallStatus.BUSY,
    "no-answer": CallStatus.NO_ANSWER,
    "failed": CallStatus.FAILED,
    "canceled": CallStatus.CANCELED,
}
#: How a terminal Twilio status ends our call: (end reason, status).
TWILIO_ENDINGS: dict[CallStatus, tuple[EndReason, CallStatus]] = {
    CallStatus.COMPLETED: (EndReason.HANGUP, CallStatus.COMPLETED),
    CallStatus.BUSY: (EndReason.BUSY, CallStatus.BUSY),
    CallStatus.NO_ANSWER: (EndReason.NO_ANSWER, CallStatus.NO_ANSWER),
    CallStatus.FAILED: (EndReason.PROVIDER_FAILED, CallStatus.FAILED),
    CallStatus.CANCELED: (EndReason.CANCELED, CallStatus.CANCELED),
}
TWILIO_TERMINAL = frozenset(s for s, ours in TWILIO_STATUSES.items() if ours in TERMINAL_STATUSES)
SIGNATURE_HEADER = "X-Twilio-Signature"


class TelephonyError(Exception):
    """A request the telephony services refuse; `field` names the input at fault (a 400)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class AccountInUse(Exception):
    """The Twilio account still has phone numbers (a 409)."""


# ------------------------------------------------------------------------------ accounts


def twilio_account_create(
    *, organization: Organization, name: str, account_sid: str, auth_token: str
) -> TwilioAccount:
    if TwilioAccount.objects.filter(organization=organization, account_sid=account_sid).exists():
        raise TelephonyError("This Twilio account is already connected.", "account_sid")
    return TwilioAccount.objects.create(
        organization=organization,
        name=name,
        account_sid=account_sid,
        auth_token_encrypted=encrypt(auth_token),
    )


def twilio_account_update(*, account: TwilioAccount, data: dict[str, Any]) -> TwilioAccount:
    """Rename, or replace the auth token (after rotating it at Twilio)."""
    if "account_sid" in data and data["account_sid"] != account.account_sid:
        clash = TwilioAccount.objects.filter(
            organization_id=account.organization_id, account_sid=data["account_sid"]
        ).exclude(pk=account.pk)
        if clash.exists():
            raise TelephonyError("This Twilio account is already connected.", "account_sid")
        account.account_sid = data["account_sid"]
    if "name" in data:
        account.name = data["name"]
    if "auth_token" in data:
        account.auth_token_encrypted = encrypt(data["auth_token"])
    account.save()
    return account


def twilio_account_delete(*, account: TwilioAccount) -> None:
    if account.phone_numbers.exists():
        raise AccountInUse("Phone numbers use this account: delete or move them first.")
    account.delete()


def account_auth_token(account: TwilioAccount) -> str:
    """The clear auth token (never log it, never return it)."""
    return decrypt(account.auth_token_encrypted)


def account_client(account: TwilioAccount):
    return twilio_client.client_for(
        account_sid=account.account_sid, auth_token=account_auth_token(account)
    )


# ------------------------------------------------------------------------------ numbers


def _check_assistant(organization: Organization, assistant: Assistant | None) -> None:
    if assistant is not None and assistant.organization_id != organization.pk:
        raise TelephonyError("No assistant with this id in your organization.", "assistant_id")


def _check_account(organization: Organization, account: TwilioAccount) -> None:
    if account.organization_id != organization.pk:
        raise TelephonyError(
            "No Twilio account with this id in your organization.", "twilio_account_id"
        )


def _check_number_free(number: str, exclude_pk: str | None = None) -> None:
    taken = PhoneNumber.objects.filter(number=number)
    if exclude_pk:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise TelephonyError("This number is already registered.", "number")


@transaction.atomic
def phone_number_create(
    *,
    organization: Organization,
    number: str,
    twilio_account: TwilioAccount,
    assistant: Assistant | None,
    name: str = "",
    provider: str = Provider.TWILIO,
) -> PhoneNumber:
    _check_account(organization, twilio_account)
    _check_assistant(organization, assistant)
    _check_number_free(number)
    return PhoneNumber.objects.create(
        organization=organization,
        number=number,
        name=name,
        provider=provider,
        twilio_account=twilio_account,
        assistant=assistant,
    )


@transaction.atomic
def phone_number_update(*, phone_number: PhoneNumber, data: dict[str, Any]) -> PhoneNumber:
    organization = phone_number.organization
    if "number" in data:
        _check_number_free(data["number"], exclude_pk=phone_number.pk)
        phone_number.number = data["number"]
    if "twilio_account" in data:
        _check_account(organization, data["twilio_account"])
        phone_number.twilio_account = data["twilio_account"]
    if "assistant" in data:
        _check_assistant(organization, data["assistant"])
        phone_number.assistant = data["assistant"]
    for name in ("name", "provider"):
        if name in data:
            setattr(phone_number, name, data[name])
    phone_number.save()
    return phone_number


def phone_number_delete(*, phone_number: PhoneNumber) -> None:
    phone_number.delete()


# ------------------------------------------------------------------------------ signatures


def request_signature_valid(
    *, account: TwilioAccount | None, url: str, params, signature: str
) -> bool:
    """Whether `signature` (X-Twilio-Signature) is Twilio's for a request to `url` with these
    form `params`, signed with the account's auth token (the SDK's RequestValidator)."""
    if account is None or not signature:
        return False
    try:
        token = account_auth_token(account)
    except DecryptionError:
        logger.error("cannot decrypt the auth token of Twilio account %s", account.pk)
        return False
    return RequestValidator(token).validate(url, params, signature)


# ------------------------------------------------------------------------------ outbound


def phone_call_initiate(
    *,
    organization: Organization,
    phone_number: PhoneNumber,
    to_number: str,
    variables: dict[str, str] | None = None,
) -> Call:
    """Create a queued outbound call from `phone_number` to `to_number`, answered by the
    number's assistant, and queue the job that places it at Twilio."""
    if phone_number.organization_id != organization.pk:
        raise TelephonyError("Phone purchase not found.", "phone_purchase_id")
    if phone_number.provider != Provider.TWILIO:
        raise TelephonyError("Unsupported provider for this number.", "provider")
    if phone_number.assistant is None:
        raise TelephonyError(
            "This phone number has no assistant; set assistant_id on it first.",
            "phone_purchase_id",
        )
    with transaction.atomic():
        try:
            call, _ = call_create(  # the stream's token is issued when the call is placed
                organization=organization,
                assistant=phone_number.assistant,
                call_type=CallType.OUTBOUND_PHONE,
                variables=variables,
                from_number=phone_number.number,
                to_number=to_number,
            )
        except CallNotAllowed as exc:
            raise TelephonyError(str(exc), "phone_purchase_id") from exc
        TwilioCall.objects.create(
            call=call,
            direction=Direction.OUTBOUND,
            account=phone_number.twilio_account,
            phone_number=phone_number,
        )
        jobs.enqueue_on_commit(PLACE, call.id)
    return call


def status_callback_path(call_id: str) -> str:
    return f"/v1/telephony/twilio/status/{call_id}"


def _placement_failed(call_id: str, detail: str) -> None:
    logger.warning("phone call %s could not be placed: %s", call_id, detail)
    TwilioCall.objects.filter(pk=call_id).update(error=detail[:500])
    call_end(call_id=call_id, reason=EndReason.PLACEMENT_FAILED, status=CallStatus.FAILED)


def call_place(call_id: str) -> None:
    """The job: create the call at Twilio with TwiML that connects the media stream, and
    store its CallSid. Runs at most once per call (a re-delivered job does nothing); a
    refusal or a network failure ends the call `failed` (`placement_failed`)."""
    link = TwilioCall.objects.select_related("call", "account").filter(pk=call_id).first()
    if link is None or link.direction != Direction.OUTBOUND:
        return
    claimed = TwilioCall.objects.filter(pk=call_id, placement_started_at__isnull=True).update(
        placement_started_at=timezone.now()
    )
    if not claimed or link.call.status != CallStatus.QUEUED:
        return
    call = link.call
    if link.account is None:
        _placement_failed(call_id, "The phone number's Twilio account was deleted.")
        return
    token = call_token_issue(call_id=call_id, ttl_seconds=settings.TWILIO_STREAM_TOKEN_TTL_SECONDS)
    if token is None:  # ended (canceled) before it was placed
        return
    try:
        created = account_client(link.account).calls.create(
            to=call.to_number,
            from_=call.from_number,
            twiml=twilio_client.stream_twiml(call_id=call.id, token=token),
            status_callback=twilio_client.public_url(status_callback_path(call.id)),
            status_callback_event=twilio_client.STATUS_CALLBACK_EVENTS,
            status_callback_method="POST",
        )
    except TwilioRestException as exc:
        _placement_failed(
            call_id, f"Twilio refused the call (HTTP {exc.status}, code {exc.code}): {exc.msg}"
        )
        return
    except (TwilioException, requests.RequestException, DecryptionError) as exc:
        _placement_failed(call_id, f"Twilio could not be reached: {type(exc).__name__}: {exc}")
        return
    sid = getattr(created, "sid", None) or ""
    if not sid:
        _placement_failed(call_id, "Twilio answered without a CallSid.")
        return
    Call.objects.filter(pk=call_id, provider_call_sid="").update(provider_call_sid=sid)
    if Call.objects.filter(pk=call_id, status__in=TERMINAL_STATUSES).exists():
        # Ended (canceled, expired) while Twilio was dialling: stop the phone ringing.
        call_hangup(call_id)


# ------------------------------------------------------------------------------ status


def call_status_apply(*, call_id: str, provider_status: str, call_sid: str = "") -> bool:
    """Apply one of Twilio's CallStatus values to a call. Idempotent, and never backwards:
    queued -> ringing -> in_progress -> an ending, each at most once; a terminal status stays.
    Returns True when it changed the call."""
    ours = TWILIO_STATUSES.get(provider_status)
    if ours is None:
        logger.info("call %s: unknown Twilio status %r ignored", call_id, provider_status[:32])
        return False
    TwilioCall.objects.filter(pk=call_id).update(last_provider_status=provider_status)
    if call_sid:
        Call.objects.filter(pk=call_id, provider_call_sid="").update(provider_call_sid=call_sid)
    if ours == CallStatus.QUEUED:
        return False
    if ours == CallStatus.RINGING:
        return call_mark_ringing(call_id=call_id)
    if ours == CallStatus.IN_PROGRESS:
        # Answered: started with no transport yet; the media stream's start records its own.
        call = Call.objects.filter(pk=call_id).first()
        return call is not None and call_start(call=call, transport="")
    reason, status = TWILIO_ENDINGS[ours]
    return call_end(call_id=call_id, reason=reason, status=status)


# ------------------------------------------------------------------------------ inbound


def inbound_call_answer(
    *, phone_number: PhoneNumber, call_sid: str, from_number: str, to_number: str
) -> str:
    """TwiML for a call to one of our numbers: a media stream to the number's assistant
    (a new inbound call), or a spoken apology when nobody can answer."""
    sorry = "Sorry, nobody can take your call at this number right now. Goodbye."
    if call_sid:
        existing = Call.objects.filter(
            organization_id=phone_number.organization_id, provider_call_sid=call_sid
        ).first()
        if existing is not None:  # Twilio asked again (a retried webhook)
            token = call_token_issue(
                call_id=existing.id, ttl_seconds=settings.CALL_TOKEN_TTL_SECONDS
            )
            if token is None:
                return twilio_client.unavailable_twiml(sorry)
            return twilio_client.stream_twiml(call_id=existing.id, token=token)
    assistant = phone_number.assistant
    if assistant is None or not assistant.enabled:
        return twilio_client.unavailable_twiml(sorry)
    with transaction.atomic():
        call, token = call_create(
            organization=phone_number.organization,
            assistant=assistant,
            call_type=CallType.INBOUND_PHONE,
            from_number=from_number[:64],
            to_number=to_number[:64],
            provider_call_sid=call_sid[:64],
        )
        TwilioCall.objects.create(
            call=call,
            direction=Direction.INBOUND,
            account=phone_number.twilio_account,
            phone_number=phone_number,
        )
    return twilio_client.stream_twiml(call_id=call.id, token=token)


# ------------------------------------------------------------------------------ the stream


def _link(call_id: str) -> TwilioCall | None:
    if not is_object_id(call_id):
        return None
    return TwilioCall.objects.select_related("account").filter(pk=call_id).first()


def stream_signature_valid(*, call_id: str, signature: str) -> bool:
    """Whether the media stream's WebSocket handshake carried Twilio's signature for this
    call's account: X-Twilio-Signature over the stream URL (`twilio_client.stream_url()`,
    no parameters), made with the account's auth token.

    Twilio signs the wss:// URL it connects to (twilio-aspnet#162; Twilio's own
    twilio-agent-connect validates that form); its documentation names no form, so the same
    URL written https:// is accepted too. Either way only the account's token can sign it."""
    link = _link(call_id)
    if link is None:
        return False
    url = twilio_client.stream_url()
    https = "https://" + url.split("://", 1)[1] if url.startswith("wss://") else ""
    return any(
        request_signature_valid(account=link.account, url=u, params={}, signature=signature)
        for u in (url, https)
        if u
    )


def stream_token_consume(call_id: str, token: str, *, signature: str | None = None) -> Call | None:
    """Claim a phone call for the media stream presenting (`call_id`, `token`) from its
    `start` message's customParameters: the call (with its assistant), marked connected, or
    None when the stream must be refused (unknown call, not a phone call, ended, already
    connected, wrong or expired token, or - when `signature` is given, which it should be:
    the handshake's X-Twilio-Signature - a bad signature). The token works once."""
    if not (is_object_id(call_id) and isinstance(token, str) and token):
        return None
    if signature is not None and not stream_signature_valid(call_id=call_id, signature=signature):
        return None
    call = (
        Call.objects.select_related("assistant")
        .filter(pk=call_id, type__in=PHONE_CALL_TYPES, status__in=LIVE_STATUSES)
        .first()
    )
    now = timezone.now()
    if (
        call is None
        or call.connected_at is not None
        or not call.token_hash
        or not hmac.compare_digest(call.token_hash, hash_gateway_token(token))
        or call.token_expires_at is None
        or call.token_expires_at <= now
    ):
        return None
    claimed = Call.objects.filter(
        pk=call.pk,
        status__in=LIVE_STATUSES,
        connected_at__isnull=True,
        token_hash=call.token_hash,
    ).update(connected_at=now, heartbeat_at=now, token_hash="")
    if not claimed:
        return None
    call.connected_at = call.heartbeat_at = now
    call.token_hash = ""
    return call


# ------------------------------------------------------------------------------ hang-up


def hangup(call: Call) -> None:
    """End the call at Twilio (in a job, after the current transaction commits)."""
    jobs.enqueue_on_commit(HANGUP, call.pk)


def call_hangup(call_id: str) -> bool:
    """The job: `calls(sid).update(status="completed")` with the call's account. Returns
    whether Twilio accepted it; a call Twilio no longer has, or a failure, is logged."""
    link = _link(call_id)
    sid = Call.objects.filter(pk=call_id).values_list("provider_call_sid", flat=True).first()
    if link is None or link.account is None or not sid:
        return False
    try:
        account_client(link.account).calls(sid).update(status="completed")
    except TwilioRestException as exc:
        logger.info(
            "hang-up of call %s at Twilio refused (HTTP %s, code %s): %s",
            call_id,
            exc.status,
            exc.code,
            exc.msg,
        )
        return False
    except (TwilioException, requests.RequestException, DecryptionError) as exc:
        logger.warning("hang-up of call %s at Twilio failed: %s", call_id, type(exc).__name__)
        return False
    return True
