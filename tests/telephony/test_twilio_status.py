"""Twilio's status callbacks: signed with the account's auth token over PUBLIC_BASE_URL + path,
mapped onto our statuses, idempotent, never backwards; each ending ends the call once."""

from __future__ import annotations

import pytest
from django.forms.models import model_to_dict

from calls.models import Call, CallEvent
from calls.services import call_create
from telephony.models import Direction, TwilioCall
from tests.telephony.fixtures import *  # noqa: F403
from tests.telephony.fixtures import CALLEE, OUR_NUMBER, PUBLIC
from tests.telephony.twilio_fakes import ACCOUNT_SID, OTHER_SID, OTHER_TOKEN, new_call_sid, sign

pytestmark = pytest.mark.django_db


@pytest.fixture
def phone_call(phone_number, twilio_account):
    """An outbound call placed at Twilio (its CallSid known), still queued."""
    call, _ = call_create(
        organization=phone_number.organization,
        assistant=phone_number.assistant,
        call_type="outbound_phone",
        from_number=OUR_NUMBER,
        to_number=CALLEE,
        provider_call_sid=new_call_sid(),
    )
    TwilioCall.objects.create(
        call=call, direction=Direction.OUTBOUND, account=twilio_account, phone_number=phone_number
    )
    return call


def form(call: Call, status: str, **extra) -> dict:
    return {
        "AccountSid": ACCOUNT_SID,
        "CallSid": call.provider_call_sid,
        "CallStatus": status,
        "From": OUR_NUMBER,
        "To": CALLEE,
        "Direction": "outbound-api",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def post_status(client, call: Call, status: str, *, path=None, signature="sign", **extra):
    path = path or f"/v1/telephony/twilio/status/{call.id}"
    data = form(call, status, **extra)
    headers = {}
    if signature == "sign":
        headers["X-Twilio-Signature"] = sign(PUBLIC + path, data)
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature
    return client.post(path, data, headers=headers)


def statuses(call: Call) -> list[tuple[str, str]]:
    return [
        (e.payload["from"], e.payload["to"])
        for e in CallEvent.objects.filter(call=call, type="call.status_changed").order_by("seq")
    ]


def ended_events(call: Call) -> int:
    return CallEvent.objects.filter(call=call, type="call.ended").count()


def test_a_full_call_moves_queued_ringing_in_progress_completed(client, public_base, phone_call):
    for status in ("initiated", "ringing", "in-progress", "completed"):
        response = post_status(client, phone_call, status)
        assert response.status_code == 204, (status, response.content)

    phone_call.refresh_from_db()
    assert phone_call.status == "completed"
    assert phone_call.end_reason == "hangup"
    # Answered: started, with the transport left to the media stream to record.
    assert phone_call.started_at is not None and phone_call.transport == ""
    assert statuses(phone_call) == [
        ("queued", "ringing"),
        ("ringing", "in_progress"),
        ("in_progress", "completed"),
    ]
    types = list(phone_call.events.order_by("seq").values_list("type", flat=True))
    assert types == [
        "call.created",
        "call.status_changed",
        "call.status_changed",
        "call.started",
        "call.status_changed",
        "call.ended",
    ]
    assert TwilioCall.objects.get(pk=phone_call.pk).last_provider_status == "completed"


def test_the_rest_api_shows_each_status(client, api, public_base, phone_call):
    seen = []
    for status in ("ringing", "in-progress", "completed"):
        post_status(client, phone_call, status)
        seen.append(api.get(f"/v1/calls/{phone_call.id}").json()["data"]["status_label"])
    assert seen == ["ringing", "in_progress", "completed"]


def test_duplicate_callbacks_change_nothing_more(client, public_base, phone_call):
    for status in ("ringing", "ringing", "in-progress", "in-progress", "completed", "completed"):
        assert post_status(client, phone_call, status).status_code == 204

    assert statuses(phone_call) == [
        ("queued", "ringing"),
        ("ringing", "in_progress"),
        ("in_progress", "completed"),
    ]
    assert ended_events(phone_call) == 1
    assert phone_call.events.filter(type="call.started").count() == 1


def test_a_late_ringing_never_moves_an_answered_call_back(client, public_base, phone_call):
    post_status(client, phone_call, "in-progress")
    post_status(client, phone_call, "ringing")
    post_status(client, phone_call, "initiated")

    phone_call.refresh_from_db()
    assert phone_call.status == "in_progress"
    assert statuses(phone_call) == [("queued", "in_progress")]


def test_callbacks_after_the_end_change_nothing(client, public_base, phone_call):
    post_status(client, phone_call, "completed")
    before = model_to_dict(Call.objects.get(pk=phone_call.pk))
    events = CallEvent.objects.count()

    for status in ("ringing", "in-progress", "busy", "failed", "completed"):
        assert post_status(client, phone_call, status).status_code == 204

    assert model_to_dict(Call.objects.get(pk=phone_call.pk)) == before
    assert CallEvent.objects.count() == events


@pytest.mark.parametrize(
    "twilio_status, status, reason",
    [
        ("busy", "busy", "busy"),
        ("no-answer", "no_answer", "no_answer"),
        ("failed", "failed", "provider_failed"),
        ("canceled", "canceled", "canceled"),
    ],
)
def test_each_unanswered_ending_ends_the_call_once(
    client,
    public_base,
    phone_call,
    fake_twilio,
    twilio_status,
    status,
    reason,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        post_status(client, phone_call, "ringing")
        post_status(client, phone_call, twilio_status)
        post_status(client, phone_call, twilio_status)  # again: Twilio retried
        post_status(client, phone_call, "completed")  # and a late, different ending

    phone_call.refresh_from_db()
    assert (phone_call.status, phone_call.end_reason) == (status, reason)
    assert ended_events(phone_call) == 1
    ended = phone_call.events.get(type="call.ended")
    assert (ended.payload["status"], ended.payload["end_reason"]) == (status, reason)
    assert fake_twilio.requests == []  # Twilio ended it: nothing to hang up


def test_the_callback_without_the_call_id_finds_the_call_by_call_sid(
    client, public_base, phone_call
):
    response = post_status(client, phone_call, "ringing", path="/v1/telephony/twilio/status")

    assert response.status_code == 204
    phone_call.refresh_from_db()
    assert phone_call.status == "ringing"


def test_the_first_callback_records_the_call_sid_when_placement_has_not_yet(
    client, public_base, phone_call
):
    sid = phone_call.provider_call_sid
    Call.objects.filter(pk=phone_call.pk).update(provider_call_sid="")
    phone_call.provider_call_sid = sid

    assert post_status(client, phone_call, "initiated").status_code == 204
    assert Call.objects.get(pk=phone_call.pk).provider_call_sid == sid


def test_a_signed_callback_about_another_twilio_call_is_ignored(client, public_base, phone_call):
    response = post_status(client, phone_call, "busy", CallSid=new_call_sid())

    assert response.status_code == 204
    assert Call.objects.get(pk=phone_call.pk).status == "queued"


# ------------------------------------------------------------------------------ signatures


def snapshot() -> dict:
    return {
        "calls": [model_to_dict(c) for c in Call.objects.order_by("pk")],
        "events": CallEvent.objects.count(),
        "links": [model_to_dict(t) for t in TwilioCall.objects.order_by("pk")],
    }


@pytest.mark.parametrize(
    "signature",
    [None, "", "bm90IGEgc2lnbmF0dXJl", "wrong-url", "wrong-token", "tampered-body"],
)
def test_a_bad_or_missing_signature_is_a_403_and_changes_nothing(
    client, public_base, phone_call, signature
):
    path = f"/v1/telephony/twilio/status/{phone_call.id}"
    data = form(phone_call, "busy")
    if signature == "wrong-url":  # the URL the request reached, not the one Twilio was given
        signature = sign(f"http://testserver{path}", data)
    elif signature == "wrong-token":
        signature = sign(PUBLIC + path, data, token=OTHER_TOKEN)
    elif signature == "tampered-body":
        signature = sign(PUBLIC + path, {**data, "CallStatus": "ringing"})
    before = snapshot()

    response = post_status(client, phone_call, "busy", signature=signature)

    assert response.status_code == 403
    assert snapshot() == before


def test_another_account_sid_in_the_body_is_refused(client, public_base, phone_call):
    before = snapshot()

    response = post_status(client, phone_call, "busy", AccountSid=OTHER_SID)

    assert response.status_code == 403
    assert snapshot() == before


def test_an_unknown_call_is_refused(client, public_base, phone_call):
    unknown = "0" * 24
    path = f"/v1/telephony/twilio/status/{unknown}"
    data = form(phone_call, "busy")

    by_id = client.post(path, data, headers={"X-Twilio-Signature": sign(PUBLIC + path, data)})
    by_sid = post_status(
        client, phone_call, "busy", path="/v1/telephony/twilio/status", CallSid=new_call_sid()
    )

    assert by_id.status_code == by_sid.status_code == 403
    assert Call.objects.get(pk=phone_call.pk).status == "queued"


def test_a_web_call_cannot_be_driven_by_status_callbacks(client, public_base, assistant):
    call, _ = call_create(organization=assistant.organization, assistant=assistant)
    path = f"/v1/telephony/twilio/status/{call.id}"
    data = {"AccountSid": ACCOUNT_SID, "CallSid": new_call_sid(), "CallStatus": "completed"}

    response = client.post(path, data, headers={"X-Twilio-Signature": sign(PUBLIC + path, data)})

    assert response.status_code == 403
    assert Call.objects.get(pk=call.pk).status == "queued"


def test_the_endpoint_needs_no_csrf_token_and_only_takes_post(public_base, phone_call):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    assert post_status(strict, phone_call, "ringing").status_code == 204
    assert strict.get(f"/v1/telephony/twilio/status/{phone_call.id}").status_code == 405


def test_the_signature_is_checked_against_the_default_public_base_url(client, settings, phone_call):
    """Without PUBLIC_BASE_URL set the server signs for http://127.0.0.1:8000."""
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    path = f"/v1/telephony/twilio/status/{phone_call.id}"
    data = form(phone_call, "ringing")

    response = client.post(
        path, data, headers={"X-Twilio-Signature": sign("http://127.0.0.1:8000" + path, data)}
    )

    assert response.status_code == 204
