"""POST /v1/calls/phone/initiate with seed 000's body: 201 and a queued outbound call, placed at
Twilio (the official SDK, against a stand-in REST API) with a media stream TwiML."""

from __future__ import annotations

import pytest

from accounts.models import ALL_SCOPES
from calls.models import Call, CallEvent
from telephony.models import TwilioCall
from telephony.services import stream_token_consume
from tests.telephony.fixtures import *  # noqa: F403
from tests.telephony.fixtures import CALLEE, OUR_NUMBER, PUBLIC
from tests.telephony.twilio_fakes import ACCOUNT_SID, AUTH_TOKEN, sign

pytestmark = pytest.mark.django_db
URL = "/v1/calls/phone/initiate"


def seed_body(phone_number) -> dict:
    return {"phone_purchase_id": phone_number.id, "phoneNumber": CALLEE, "provider": "twilio"}


def test_seed_000_body_answers_201_with_the_call_id_and_places_the_call(
    api, phone_number, assistant, fake_twilio, public_base, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(URL, seed_body(phone_number))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body == {"status": True, "message": "Call initiated", "callId": body["callId"]}
    call = Call.objects.get(pk=body["callId"])
    assert (call.type, call.status) == ("outbound_phone", "queued")
    assert (call.from_number, call.to_number) == (OUR_NUMBER, CALLEE)
    assert call.assistant_id == assistant.id
    assert call.organization_id == phone_number.organization_id
    assert list(call.events.values_list("type", flat=True)) == ["call.created"]

    # Placed once, with the account's credentials, from the number to the callee.
    [create] = fake_twilio.creates()
    assert create.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
    assert create.auth == (ACCOUNT_SID, AUTH_TOKEN)
    assert (create.one("To"), create.one("From")) == (CALLEE, OUR_NUMBER)
    assert create.one("StatusCallback") == f"{PUBLIC}/v1/telephony/twilio/status/{call.id}"
    assert create.one("StatusCallbackMethod") == "POST"
    assert create.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    stream = create.stream()
    assert stream["url"] == "wss://voice.example.com/ws/phone/twilio/stream"
    assert stream["parameters"]["call_id"] == call.id
    call.refresh_from_db()
    assert call.provider_call_sid.startswith("CA") and len(call.provider_call_sid) == 34

    # The TwiML's token is the stream's single-use way in (with Twilio's handshake signature).
    token = stream["parameters"]["token"]
    signature = sign(stream["url"], {})
    claimed = stream_token_consume(call.id, token, signature=signature)
    assert claimed is not None and claimed.pk == call.id
    assert claimed.assistant_id == assistant.id
    assert stream_token_consume(call.id, token, signature=signature) is None


def test_call_detail_and_list_show_the_numbers_and_the_call_sid(
    api, phone_number, fake_twilio, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        call_id = api.post(URL, seed_body(phone_number)).json()["callId"]

    detail = api.get(f"/v1/calls/{call_id}").json()["data"]
    listed = api.get("/v1/calls", {"type": "outbound_phone"}).json()["data"]

    sid = Call.objects.get(pk=call_id).provider_call_sid
    for shown in (detail, listed[0]):
        assert shown["type"] == "outbound_phone"
        assert shown["from_number"] == OUR_NUMBER
        assert shown["to_number"] == CALLEE
        assert shown["provider_call_sid"] == sid
        assert shown["status_label"] == "queued"


def test_variables_travel_with_the_call(api, phone_number):
    response = api.post(URL, {**seed_body(phone_number), "variables": {"name": "Ada"}})

    assert response.status_code == 201
    assert Call.objects.get(pk=response.json()["callId"]).variables == {"name": "Ada"}


@pytest.mark.parametrize(
    "number", ["4155552671", "+0155552671", "+1 415 555 2671", "+1415555267100000", "", 14155552671]
)
def test_a_number_that_is_not_e164_is_a_400_naming_phoneNumber(api, phone_number, number):
    response = api.post(URL, {**seed_body(phone_number), "phoneNumber": number})

    assert response.status_code == 400
    body = response.json()
    assert "phoneNumber" in body["errors"]
    assert "phoneNumber" in body["message"]
    assert not Call.objects.exists()


@pytest.mark.parametrize("provider", ["vonage", "Twilio", "", None, 1])
def test_an_unsupported_provider_is_a_400_naming_provider(api, phone_number, provider):
    response = api.post(URL, {**seed_body(phone_number), "provider": provider})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["provider"]
    assert not Call.objects.exists()


def test_missing_fields_and_unknown_fields_are_400s(api, phone_number):
    missing = api.post(URL, {"phoneNumber": CALLEE, "provider": "twilio"})
    unknown = api.post(URL, {**seed_body(phone_number), "assistantId": "a" * 24})

    assert missing.status_code == 400 and "phone_purchase_id" in missing.json()["errors"]
    assert unknown.status_code == 400 and "assistantId" in unknown.json()["errors"]


def test_another_organizations_phone_purchase_is_a_404(other_api, phone_number):
    response = other_api.post(URL, seed_body(phone_number))

    assert response.status_code == 404
    assert response.json() == {"status": False, "message": "Phone purchase not found."}
    assert not Call.objects.exists()


def test_an_unknown_phone_purchase_is_a_404_and_a_malformed_id_a_400(api, phone_number):
    unknown = api.post(URL, {**seed_body(phone_number), "phone_purchase_id": "0" * 24})
    malformed = api.post(URL, {**seed_body(phone_number), "phone_purchase_id": "nope"})

    assert unknown.status_code == 404
    assert malformed.status_code == 400 and "phone_purchase_id" in malformed.json()["errors"]


def test_without_calls_write_it_is_a_403(make_api, phone_number):
    client = make_api(scopes=[s for s in ALL_SCOPES if s != "calls:write"])

    response = client.post(URL, seed_body(phone_number))

    assert response.status_code == 403
    assert "calls:write" in response.json()["message"]
    assert not Call.objects.exists()


def test_a_number_without_an_assistant_cannot_place_calls(api, phone_number):
    phone_number.assistant = None
    phone_number.save()

    response = api.post(URL, seed_body(phone_number))

    assert response.status_code == 400
    assert "phone_purchase_id" in response.json()["errors"]
    assert not Call.objects.exists()


def test_a_disabled_assistant_cannot_place_calls(api, phone_number, assistant):
    assistant.enabled = False
    assistant.save()

    response = api.post(URL, seed_body(phone_number))

    assert response.status_code == 400
    assert not Call.objects.exists() and not CallEvent.objects.exists()


def test_the_call_remembers_its_account_and_number(api, phone_number, twilio_account):
    call_id = api.post(URL, seed_body(phone_number)).json()["callId"]

    link = TwilioCall.objects.get(pk=call_id)
    assert (link.direction, link.account_id, link.phone_number_id) == (
        "outbound",
        twilio_account.id,
        phone_number.id,
    )
