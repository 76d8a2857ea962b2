"""Placing and hanging up calls with the official SDK against a stand-in REST API, and the
media stream's single-use token."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from calls.models import Call, CallEvent
from calls.services import call_create, call_end
from telephony import twilio_client
from telephony.models import TwilioCall
from telephony.services import (
    call_hangup,
    call_place,
    hangup,
    phone_call_initiate,
    stream_signature_valid,
    stream_token_consume,
)
from tests.telephony.fixtures import *  # noqa: F403
from tests.telephony.fixtures import CALLEE, PUBLIC
from tests.telephony.twilio_fakes import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    OTHER_TOKEN,
    FakeTwilioAPI,
    sign,
    twilio_error,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def initiate(organization, phone_number, django_capture_on_commit_callbacks):
    """Initiate a call the way the API does and run its placing job (after commit)."""

    def run() -> Call:
        with django_capture_on_commit_callbacks(execute=True):
            call = phone_call_initiate(
                organization=organization, phone_number=phone_number, to_number=CALLEE
            )
        call.refresh_from_db()
        return call

    return run


def ended(call: Call) -> list[CallEvent]:
    return list(CallEvent.objects.filter(call=call, type="call.ended"))


def test_the_sdk_client_is_pointed_at_the_base_url_through_its_http_client(settings):
    settings.TWILIO_API_BASE_URL = "http://127.0.0.1:9"
    client = twilio_client.client_for(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN)

    assert isinstance(client.http_client, twilio_client.BaseURLHttpClient)
    assert client.http_client.base_url == "http://127.0.0.1:9"


def test_without_a_base_url_the_sdk_talks_to_twilio_itself(settings):
    settings.TWILIO_API_BASE_URL = ""
    http = twilio_client.http_client()
    seen = []
    # Catch the URL where the requests library would be handed it (nothing is sent).
    http.session = None
    original = twilio_client.TwilioHttpClient.request

    def spy(self, method, url, *args, **kwargs):
        seen.append(url)
        raise RuntimeError("stop")

    twilio_client.TwilioHttpClient.request = spy
    try:
        with pytest.raises(RuntimeError):
            http.request("POST", "https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json")
    finally:
        twilio_client.TwilioHttpClient.request = original
    assert seen == ["https://api.twilio.com/2010-04-01/Accounts/AC1/Calls.json"]


def test_a_placed_call_stores_its_call_sid_and_is_placed_once(initiate, fake_twilio):
    call = initiate()

    assert call.provider_call_sid == "CA" + "1".rjust(32, "0")
    call_place(call.id)  # the job delivered again
    assert len(fake_twilio.creates()) == 1
    assert Call.objects.get(pk=call.pk).status == "queued"


def test_a_twilio_refusal_fails_the_call_once_with_a_clear_reason(initiate, fake_twilio):
    fake_twilio.answers.append(twilio_error(400, 21211, "The 'To' number is not a valid number."))

    call = initiate()
    call_place(call.id)

    assert (call.status, call.end_reason) == ("failed", "placement_failed")
    assert len(ended(call)) == 1
    assert ended(call)[0].payload["end_reason"] == "placement_failed"
    error = TwilioCall.objects.get(pk=call.pk).error
    assert "21211" in error and "not a valid number" in error
    assert len(fake_twilio.creates()) == 1
    assert fake_twilio.updates() == []  # never placed: nothing to hang up


def test_an_unreachable_api_fails_the_call_once(initiate, settings):
    with FakeTwilioAPI() as gone:
        url = gone.url
    settings.TWILIO_API_BASE_URL = url  # nothing listens there any more

    call = initiate()

    assert (call.status, call.end_reason) == ("failed", "placement_failed")
    assert len(ended(call)) == 1
    assert "could not be reached" in TwilioCall.objects.get(pk=call.pk).error


def test_the_auth_token_never_reaches_the_logs(initiate, fake_twilio, caplog):
    fake_twilio.answers.append(twilio_error(401, 20003, "Authenticate"))
    with caplog.at_level(logging.DEBUG):
        initiate()
    assert AUTH_TOKEN not in caplog.text
    assert "20003" in caplog.text


def test_a_call_canceled_before_its_job_runs_is_never_placed(
    organization, phone_number, fake_twilio
):
    call = phone_call_initiate(
        organization=organization, phone_number=phone_number, to_number=CALLEE
    )
    call_end(call_id=call.id, reason="canceled", status="canceled")

    call_place(call.id)

    assert fake_twilio.requests == []


def test_a_call_that_ended_while_twilio_dialled_is_hung_up(
    organization, phone_number, fake_twilio, monkeypatch
):
    call = phone_call_initiate(
        organization=organization, phone_number=phone_number, to_number=CALLEE
    )
    original = twilio_client.stream_twiml

    def end_meanwhile(**kwargs):
        call_end(call_id=call.id, reason="canceled", status="canceled")
        return original(**kwargs)

    monkeypatch.setattr(twilio_client, "stream_twiml", end_meanwhile)
    call_place(call.id)

    [update] = fake_twilio.updates()
    sid = Call.objects.get(pk=call.pk).provider_call_sid
    assert update.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{sid}.json"
    assert update.form == {"Status": ["completed"]}


# ------------------------------------------------------------------------------ hang-up


def test_hangup_ends_the_call_at_twilio_with_the_sdk(
    initiate, fake_twilio, django_capture_on_commit_callbacks
):
    call = initiate()

    with django_capture_on_commit_callbacks(execute=True):
        hangup(call)

    [update] = fake_twilio.updates()
    assert update.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call.provider_call_sid}.json"
    assert update.form == {"Status": ["completed"]}
    assert update.auth == (ACCOUNT_SID, AUTH_TOKEN)


def test_a_call_ended_here_is_hung_up_at_twilio(
    initiate, fake_twilio, django_capture_on_commit_callbacks
):
    call = initiate()
    Call.objects.filter(pk=call.pk).update(status="in_progress", started_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        call_end(call_id=call.id, reason="assistant_ended")

    assert [u.form for u in fake_twilio.updates()] == [{"Status": ["completed"]}]


def test_a_call_the_caller_hung_up_is_not_hung_up_again(
    initiate, fake_twilio, django_capture_on_commit_callbacks
):
    call = initiate()

    with django_capture_on_commit_callbacks(execute=True):
        call_end(call_id=call.id, reason="hangup")

    assert fake_twilio.updates() == []


def test_hangup_of_a_call_twilio_no_longer_has_is_logged_not_raised(initiate, fake_twilio):
    call = initiate()
    fake_twilio.answers.append(twilio_error(404, 20404, "The requested resource was not found"))

    assert call_hangup(call.id) is False


def test_hangup_of_a_call_never_placed_sends_nothing(organization, phone_number, fake_twilio):
    call = phone_call_initiate(
        organization=organization, phone_number=phone_number, to_number=CALLEE
    )

    assert call_hangup(call.id) is False
    assert fake_twilio.requests == []


# ------------------------------------------------------------------------------ the stream


def placed_stream(fake_twilio) -> tuple[str, str]:
    parameters = fake_twilio.creates()[-1].stream()["parameters"]
    return parameters["call_id"], parameters["token"]


def test_the_stream_token_works_once(initiate, fake_twilio):
    initiate()
    call_id, token = placed_stream(fake_twilio)

    first = stream_token_consume(call_id, token)
    second = stream_token_consume(call_id, token)

    assert first is not None and first.connected_at is not None
    assert second is None
    assert Call.objects.get(pk=call_id).token_hash == ""


@pytest.mark.parametrize("case", ["wrong token", "empty token", "malformed id", "other call"])
def test_the_stream_is_refused_a_wrong_token_or_call(initiate, fake_twilio, case):
    initiate()
    call_id, token = placed_stream(fake_twilio)
    other = initiate()
    args = {
        "wrong token": (call_id, token[:-1] + ("A" if token[-1] != "A" else "B")),
        "empty token": (call_id, ""),
        "malformed id": ("not-an-id", token),
        "other call": (other.id, token),
    }[case]

    assert stream_token_consume(*args) is None
    assert Call.objects.get(pk=call_id).connected_at is None


def test_an_expired_or_ended_calls_token_is_refused(initiate, fake_twilio):
    initiate()
    call_id, token = placed_stream(fake_twilio)
    Call.objects.filter(pk=call_id).update(token_expires_at=timezone.now() - timedelta(seconds=1))
    assert stream_token_consume(call_id, token) is None

    initiate()
    call_id, token = placed_stream(fake_twilio)
    call_end(call_id=call_id, reason="canceled", status="canceled")
    assert stream_token_consume(call_id, token) is None


def test_the_stream_token_lasts_long_enough_to_ring(initiate, fake_twilio, settings):
    call = initiate()
    left = call.token_expires_at - timezone.now()
    assert left > timedelta(seconds=settings.TWILIO_STREAM_TOKEN_TTL_SECONDS - 10)


def test_a_web_calls_token_does_not_open_a_phone_stream(assistant):
    call, token = call_create(organization=assistant.organization, assistant=assistant)

    assert stream_token_consume(call.id, token) is None


def test_a_ringing_or_answered_call_can_claim_its_stream(initiate, fake_twilio):
    initiate()
    call_id, token = placed_stream(fake_twilio)
    Call.objects.filter(pk=call_id).update(status="in_progress")

    assert stream_token_consume(call_id, token) is not None


def test_the_handshake_signature_is_twilios_over_the_stream_url(initiate, fake_twilio, public_base):
    initiate()
    call_id, token = placed_stream(fake_twilio)
    url = "wss://voice.example.com/ws/phone/twilio/stream"

    assert stream_signature_valid(call_id=call_id, signature=sign(url, {}))
    assert not stream_signature_valid(call_id=call_id, signature=sign(url, {}, OTHER_TOKEN))
    assert not stream_signature_valid(call_id=call_id, signature=sign(PUBLIC + "/ws", {}))
    assert not stream_signature_valid(call_id=call_id, signature="")
    # A bad signature refuses the stream and spends nothing: the token still works after.
    assert stream_token_consume(call_id, token, signature="bad") is None
    assert stream_token_consume(call_id, token, signature=sign(url, {})) is not None


@pytest.mark.parametrize("action", ["cancel", "end"])
def test_a_ringing_call_ended_over_the_api_stops_ringing_at_twilio(
    api, initiate, fake_twilio, action, django_capture_on_commit_callbacks
):
    call = initiate()
    Call.objects.filter(pk=call.pk).update(status="ringing")

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/v1/calls/{call.id}/{action}")

    assert response.status_code == 200, response.content
    call.refresh_from_db()
    assert (call.status, call.end_reason) == ("failed", "canceled")
    assert [u.form for u in fake_twilio.updates()] == [{"Status": ["completed"]}]
