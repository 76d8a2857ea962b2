"""The REST side, driven by the official SDK through its HTTP-client extension point."""

from __future__ import annotations

import re

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from tests.twilio_emulator.helpers import ACCOUNT_SID

SAY = "<Response><Say>Hello</Say></Response>"


def test_sdk_create_answers_201_with_a_twilio_shaped_call(emulator, client, receiver):
    call = client.calls.create(
        to="+15550001111",
        from_="+15550002222",
        twiml=SAY,
        status_callback=receiver.url + "/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
        status_callback_method="POST",
    )
    assert re.fullmatch(r"CA[0-9a-f]{32}", call.sid)
    assert call.status == "queued"
    assert (call.to, call._from, call.account_sid) == ("+15550001111", "+15550002222", ACCOUNT_SID)
    assert call.direction == "outbound-api"
    assert call.uri == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{call.sid}.json"
    form = emulator.requests[-1]["form"]  # the SDK's exact form encoding: repeated events
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert form["Twiml"] == [SAY]
    assert emulator.get_call(call.sid).wait_ended(10)
    fetched = client.calls(call.sid).fetch()
    assert fetched.status == "completed"
    assert fetched.start_time is not None and fetched.end_time is not None


def test_wrong_token_is_refused_with_twilio_error(emulator):
    bad = Client(ACCOUNT_SID, "not-the-token", http_client=emulator.http_client())
    with pytest.raises(TwilioRestException) as info:
        bad.calls.create(to="+15550001111", from_="+15550002222", twiml=SAY)
    assert (info.value.status, info.value.code) == (401, 20003)
    assert emulator.calls == {}


def test_other_accounts_path_is_forbidden(emulator, client):
    with pytest.raises(TwilioRestException) as info:
        client.api.v2010.accounts("AC" + "f" * 32).calls.create(
            to="+15550001111", from_="+15550002222", twiml=SAY
        )
    assert info.value.status == 403


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"to": "5550001111", "from_": "+15550002222", "twiml": SAY}, 21211),
        ({"to": "+15550001111", "from_": "nope", "twiml": SAY}, 21212),
        ({"to": "+15550001111", "from_": "+15550002222"}, 21205),
        (
            {
                "to": "+15550001111",
                "from_": "+15550002222",
                "twiml": SAY,
                "status_callback": "http://127.0.0.1:9/s",
                "status_callback_event": ["in-progress"],
            },
            21626,
        ),
    ],
)
def test_bad_parameters_answer_400_with_code(emulator, client, kwargs, code):
    with pytest.raises(TwilioRestException) as info:
        client.calls.create(**kwargs)
    assert (info.value.status, info.value.code) == (400, code)
    assert emulator.calls == {}


def test_update_unknown_call_is_404(client):
    with pytest.raises(TwilioRestException) as info:
        client.calls("CA" + "0" * 32).update(status="completed")
    assert (info.value.status, info.value.code) == (404, 20404)


def test_update_of_an_ended_call_is_refused(emulator, client):
    call = client.calls.create(to="+15550001111", from_="+15550002222", twiml=SAY)
    assert emulator.get_call(call.sid).wait_ended(10)
    with pytest.raises(TwilioRestException) as info:
        client.calls(call.sid).update(status="completed")
    assert (info.value.status, info.value.code) == (400, 21220)
