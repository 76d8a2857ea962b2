"""Status callbacks: Twilio's parameters, signatures the SDK's RequestValidator accepts, and
each scenario's sequence."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from tests.twilio_emulator.helpers import ACCOUNT_SID, AUTH_TOKEN
from twilio_emulator import Scenario

SAY = "<Response><Say>Hello</Say></Response>"
ALL_EVENTS = ["initiated", "ringing", "answered", "completed"]


def place(client, receiver, to="+15550001111", events=ALL_EVENTS, method="POST", **extra):
    return client.calls.create(
        to=to,
        from_="+15550002222",
        status_callback=receiver.url + "/status",
        status_callback_event=events,
        status_callback_method=method,
        **({"twiml": SAY} | extra),
    )


def assert_signed(request) -> None:
    signature = request["headers"]["X-Twilio-Signature"]
    params = request["form"] if request["method"] == "POST" else {}
    assert RequestValidator(AUTH_TOKEN).validate(request["url"], params, signature)
    assert not RequestValidator("another-token").validate(request["url"], params, signature)


def test_answered_call_sends_the_four_events_signed(emulator, client, receiver):
    call = place(client, receiver)
    emulated = emulator.get_call(call.sid)
    assert emulated.wait_ended(10)
    requests = receiver.at("/status")
    assert [r["form"]["CallStatus"] for r in requests] == [
        "initiated",
        "ringing",
        "in-progress",
        "completed",
    ]
    assert [r["form"]["SequenceNumber"] for r in requests] == ["0", "1", "2", "3"]
    for request in requests:
        assert_signed(request)
        form = request["form"]
        assert form["CallSid"] == call.sid and form["AccountSid"] == ACCOUNT_SID
        assert (form["From"], form["To"], form["Direction"]) == (
            "+15550002222",
            "+15550001111",
            "outbound-api",
        )
        assert form["ApiVersion"] == "2010-04-01" and form["Timestamp"].endswith("+0000")
        assert form["CallbackSource"] == "call-progress-events"
    assert "CallDuration" not in requests[2]["form"]
    assert requests[3]["form"]["CallDuration"] == "0"
    assert emulated.statuses() == ["initiated", "ringing", "in-progress", "completed"]


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("busy", ["initiated", "busy"]),
        ("failed", ["initiated", "failed"]),
        ("no-answer", ["initiated", "ringing", "no-answer"]),
        ("canceled", ["initiated", "ringing", "canceled"]),
    ],
)
def test_unanswered_scenarios_end_once_with_their_status(
    emulator, client, receiver, outcome, expected
):
    emulator.set_scenario("+15550009999", Scenario(outcome=outcome, ring_seconds=0.05))
    call = place(client, receiver, to="+15550009999")
    emulated = emulator.get_call(call.sid)
    assert emulated.wait_ended(10)
    assert [r["form"]["CallStatus"] for r in receiver.at("/status")] == expected
    assert client.calls(call.sid).fetch().status == outcome
    assert emulated.streams == []
    for request in receiver.at("/status"):
        assert_signed(request)


def test_rest_cancel_while_ringing(emulator, client, receiver):
    emulator.set_scenario("+15550003333", Scenario(ring_seconds=30))
    call = place(client, receiver, to="+15550003333")
    emulated = emulator.get_call(call.sid)
    while emulated.status != "ringing":
        assert not emulated.ended.wait(0.01)
    updated = client.calls(call.sid).update(status="canceled")
    assert updated.status == "canceled"
    assert emulated.wait_ended(10)
    assert emulated.statuses() == ["initiated", "ringing", "canceled"]


def test_only_subscribed_events_are_sent(emulator, client, receiver):
    call = place(client, receiver, events=["completed"])
    assert emulator.get_call(call.sid).wait_ended(10)
    assert [r["form"]["CallStatus"] for r in receiver.at("/status")] == ["completed"]


def test_get_callbacks_sign_the_url_with_its_query(emulator, client, receiver):
    call = place(client, receiver, events=["answered", "completed"], method="GET")
    assert emulator.get_call(call.sid).wait_ended(10)
    requests = receiver.at("/status")
    assert [r["query"]["CallStatus"] for r in requests] == ["in-progress", "completed"]
    for request in requests:
        assert request["method"] == "GET" and request["form"] == {}
        assert_signed(request)


def test_url_mode_fetches_twiml_with_a_signed_request(emulator, client, receiver):
    receiver.twiml["/answer"] = SAY
    call = client.calls.create(
        to="+15550001111", from_="+15550002222", url=receiver.url + "/answer"
    )
    assert emulator.get_call(call.sid).wait_ended(10)
    (fetch,) = receiver.at("/answer")
    assert fetch["form"]["CallStatus"] == "in-progress" and fetch["form"]["CallSid"] == call.sid
    assert_signed(fetch)
