"""The numbers' voice webhook: a signed call to one of our numbers is answered with TwiML that
connects a media stream to the number's assistant."""

from __future__ import annotations

from xml.etree import ElementTree

import pytest

from calls.models import Call, CallEvent
from telephony.models import TwilioCall
from telephony.services import stream_token_consume
from tests.telephony.fixtures import *  # noqa: F403
from tests.telephony.fixtures import OUR_NUMBER, PUBLIC
from tests.telephony.twilio_fakes import ACCOUNT_SID, OTHER_TOKEN, new_call_sid, sign

pytestmark = pytest.mark.django_db
PATH = "/v1/telephony/twilio/voice"
CALLER = "+447700900123"


def incoming(**extra) -> dict:
    return {
        "AccountSid": ACCOUNT_SID,
        "CallSid": new_call_sid(),
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": CALLER,
        "To": OUR_NUMBER,
        "ApiVersion": "2010-04-01",
        **extra,
    }


def post_voice(client, data: dict, *, signature="sign", token=None):
    headers = {}
    if signature == "sign":
        headers["X-Twilio-Signature"] = sign(
            PUBLIC + PATH, data, **({"token": token} if token else {})
        )
    elif signature is not None:
        headers["X-Twilio-Signature"] = signature
    return client.post(PATH, data, headers=headers)


def stream_of(response) -> dict:
    root = ElementTree.fromstring(response.content)
    stream = root.find("./Connect/Stream")
    return {
        "url": stream.get("url"),
        "parameters": {p.get("name"): p.get("value") for p in stream.findall("Parameter")},
    }


def test_a_call_to_our_number_is_answered_by_its_assistant_over_a_stream(
    client, public_base, phone_number, assistant
):
    data = incoming()

    response = post_voice(client, data)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/xml")
    stream = stream_of(response)
    assert stream["url"] == "wss://voice.example.com/ws/phone/twilio/stream"
    call = Call.objects.get(pk=stream["parameters"]["call_id"])
    assert (call.type, call.status, call.assistant_id) == ("inbound_phone", "queued", assistant.id)
    assert (call.from_number, call.to_number) == (CALLER, OUR_NUMBER)
    assert call.provider_call_sid == data["CallSid"]
    assert TwilioCall.objects.get(pk=call.pk).direction == "inbound"
    assert list(call.events.values_list("type", flat=True)) == ["call.created"]
    # The stream connects with the TwiML's token, once.
    assert stream_token_consume(call.id, stream["parameters"]["token"]) is not None
    assert stream_token_consume(call.id, stream["parameters"]["token"]) is None


def test_a_retried_webhook_answers_the_same_call(client, public_base, phone_number):
    data = incoming()

    first = stream_of(post_voice(client, data))
    second = stream_of(post_voice(client, data))

    assert first["parameters"]["call_id"] == second["parameters"]["call_id"]
    assert Call.objects.count() == 1
    # Only the newest token works.
    call_id = first["parameters"]["call_id"]
    assert stream_token_consume(call_id, first["parameters"]["token"]) is None
    assert stream_token_consume(call_id, second["parameters"]["token"]) is not None


def test_an_unknown_number_is_rejected_without_a_call(client, public_base, phone_number):
    response = post_voice(client, incoming(To="+14155559999"))

    assert response.status_code == 200
    assert ElementTree.fromstring(response.content).find("Reject") is not None
    assert not Call.objects.exists()


def test_a_number_without_an_assistant_apologises_and_hangs_up(client, public_base, phone_number):
    phone_number.assistant = None
    phone_number.save()

    response = post_voice(client, incoming())

    root = ElementTree.fromstring(response.content)
    assert response.status_code == 200
    assert root.find("Say") is not None and root.find("Hangup") is not None
    assert not Call.objects.exists()


@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl", "other-token", "http-url"])
def test_a_bad_or_missing_signature_is_a_403_and_creates_nothing(
    client, public_base, phone_number, signature
):
    data = incoming()
    if signature == "other-token":
        signature = sign(PUBLIC + PATH, data, OTHER_TOKEN)
    elif signature == "http-url":
        signature = sign("http://voice.example.com" + PATH, data)

    response = post_voice(client, data, signature=signature)

    assert response.status_code == 403
    assert not Call.objects.exists() and not CallEvent.objects.exists()


def test_a_plain_http_public_base_url_gives_a_ws_stream(client, settings, phone_number):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    data = incoming()

    response = client.post(
        PATH, data, headers={"X-Twilio-Signature": sign("http://127.0.0.1:8000" + PATH, data)}
    )

    assert stream_of(response)["url"] == "ws://127.0.0.1:8000/ws/phone/twilio/stream"
