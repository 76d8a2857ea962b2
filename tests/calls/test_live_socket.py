"""The live transcript socket (`/ws/calls/{id}`), `GET /v1/calls/{id}/live`, and ending a call
over the REST API (`POST /v1/calls/{id}/end` and `/cancel`), with Channels' communicator, the
in-memory channel layer and the fake voice providers of tests/calls/test_consumer.py.

(tests/test_scale_out.py follows a call and ends it across two real daphne processes.)"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from accounts.models import Organization
from accounts.services import api_key_create
from assistants.models import Assistant
from calls import consumers
from calls.models import Call, CallEvent, CallStatus, LiveSessionToken
from calls.protocol import MAX_TEXT_BYTES, CloseCode
from tests.calls.fakes import make_factory, silence, speech
from tests.calls.test_consumer import make_call, messages_until, open_socket, send_audio
from widgetsite.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

APP = URLRouter(websocket_urlpatterns)
GOODBYE = "Thank you for calling. Goodbye!"  # the engine's goodbye line (SessionConfig)


@pytest.fixture(autouse=True)
def fake_voice(settings, tmp_path):
    settings.VOICE_PROVIDERS_FACTORY = make_factory()
    settings.MEDIA_ROOT = tmp_path


# --- helpers ---


def new_key(organization, scopes=("calls:read", "calls:write")) -> str:
    return api_key_create(organization=organization, name="live", scopes=list(scopes))[1]


async def queued_call():
    """(call, gateway token, key with calls:read and calls:write of the call's organization)."""
    call, token = await database_sync_to_async(make_call)()
    organization = await Organization.objects.aget(pk=call.organization_id)
    return call, token, await database_sync_to_async(new_key)(organization)


async def rest(method: str, path: str, secret: str):
    def send():
        return Client().generic(method, path, headers={"X-API-Key": secret})

    return await database_sync_to_async(send)()


async def live_info(call: Call, secret: str) -> dict:
    response = await rest("GET", f"/v1/calls/{call.id}/live", secret)
    assert response.status_code == 200, response.content
    return response.json()["data"]


async def subscribe(call_id: str, query: str = "", subprotocols=None):
    communicator = WebsocketCommunicator(
        APP, f"/ws/calls/{call_id}{query}", subprotocols=subprotocols
    )
    connected, subprotocol = await communicator.connect()
    assert connected  # accepted first: a refusal comes as an error message and a close code
    return communicator, subprotocol


async def connected_message(communicator) -> dict:
    message = json.loads(await communicator.receive_from())
    assert message["type"] == "connected", message
    return message["data"]


async def expect_refusal(communicator, code: int, words: str) -> None:
    message = json.loads(await communicator.receive_from())
    assert message == {"type": "error", "code": code, "error": message["error"]}
    assert words.lower() in message["error"].lower()
    closing = await communicator.receive_output()
    assert closing["type"] == "websocket.close" and closing["code"] == code
    await communicator.wait()


async def updates_until_closed(communicator, timeout: float = 20.0) -> tuple[list[dict], int]:  # noqa: ASYNC109
    """Every message until the server closes; and the close code."""
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            output = await communicator.receive_output(timeout=timeout)
            if output["type"] == "websocket.close":
                return seen, output.get("code")
            seen.append(json.loads(output["text"]))


async def start_call(call: Call, token: str):
    """The caller's socket, after hello and the greeting."""
    caller = await open_socket(call, token)
    await caller.send_json_to({"type": "hello", "audio": "websocket"})
    await messages_until(
        caller, lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"]
    )
    return caller


async def stored_events(call: Call) -> list[tuple[int, str]]:
    return [(e.seq, e.type) async for e in CallEvent.objects.filter(call_id=call.pk)]


async def wait_for_status(call: Call, *statuses: str) -> Call:
    async with asyncio.timeout(15):
        while True:
            current = await Call.objects.aget(pk=call.pk)
            if current.status in statuses:
                return current
            await asyncio.sleep(0.05)


# --- GET /v1/calls/{id}/live ---


async def test_live_endpoint_answers_the_socket_url_a_session_token_and_how_to_connect():
    call, _, key = await queued_call()
    data = await live_info(call, key)
    url = f"ws://testserver/ws/calls/{call.id}"
    assert data["websocket_url"] == url and data["call_id"] == call.id
    info = data["connection_info"]
    assert info["url"] == url and info["auth_method"] == "query_param"
    assert info["auth_param"] == "api_key" and info["temp_auth_param"] == "session_token"
    assert info["example"] == f"{url}?api_key=YOUR_API_KEY"
    assert info["example_session"] == f"{url}?session_token=TEMP_TOKEN"
    assert info["message_format"] == "json"
    assert info["message_types"] == [
        "connected",
        "transcript_update",
        "call_status_update",
        "error",
    ]
    assert "Sec-WebSocket-Protocol" in info["subprotocol_auth"]
    # Stored only as its SHA-256, for this call, redeemable for 5 minutes.
    stored = await LiveSessionToken.objects.aget(call_id=call.pk)
    assert stored.token_hash == hashlib.sha256(data["temp_token"].encode()).hexdigest()
    assert data["temp_token"] not in json.dumps(
        [str(v) for v in (stored.token_hash, stored.call_id, stored.expires_at)]
    )
    assert stored.expires_at - stored.created_at == pytest.approx(
        timedelta(minutes=5), abs=timedelta(seconds=2)
    )


# --- authentication ---


async def test_api_key_with_calls_read_subscribes_and_gets_the_status_and_every_event():
    call, _, key = await queued_call()
    communicator, _ = await subscribe(call.id, f"?api_key={key}")
    data = await connected_message(communicator)
    assert data["call_id"] == call.id and data["status"] == "queued" and data["status_code"] == 0
    assert [(e["seq"], e["type"]) for e in data["events"]] == await stored_events(call)
    await communicator.send_json_to({"type": "ping"})
    assert json.loads(await communicator.receive_from()) == {"type": "pong"}
    await communicator.disconnect()


async def test_session_token_subscribes_once_and_is_refused_on_second_use():
    call, _, key = await queued_call()
    token = (await live_info(call, key))["temp_token"]
    first, _ = await subscribe(call.id, f"?session_token={token}")
    assert (await connected_message(first))["status"] == "queued"
    second, _ = await subscribe(call.id, f"?session_token={token}")
    await expect_refusal(second, CloseCode.BAD_CREDENTIALS, "used")
    await first.disconnect()


async def test_session_token_as_the_websocket_subprotocol_is_accepted_and_echoed():
    call, _, key = await queued_call()
    token = (await live_info(call, key))["temp_token"]
    communicator, subprotocol = await subscribe(call.id, subprotocols=[token])
    assert subprotocol == token  # browsers fail the handshake otherwise
    assert (await connected_message(communicator))["call_id"] == call.id
    await communicator.disconnect()


async def test_session_token_is_refused_once_its_five_minutes_are_over():
    call, _, key = await queued_call()
    token = (await live_info(call, key))["temp_token"]
    await LiveSessionToken.objects.filter(call_id=call.pk).aupdate(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    communicator, _ = await subscribe(call.id, f"?session_token={token}")
    await expect_refusal(communicator, CloseCode.BAD_CREDENTIALS, "expired")


async def test_session_token_of_another_call_is_refused_and_not_used_up():
    call, _, key = await queued_call()
    other, _ = await database_sync_to_async(make_call)()
    token = (await live_info(call, key))["temp_token"]
    wrong, _ = await subscribe(other.id, f"?session_token={token}")
    await expect_refusal(wrong, CloseCode.BAD_CREDENTIALS, "session token")
    right, _ = await subscribe(call.id, f"?session_token={token}")
    assert (await connected_message(right))["call_id"] == call.id
    await right.disconnect()


async def test_another_organizations_key_is_closed_4404_like_an_unknown_call():
    call, _, _ = await queued_call()
    _, _, other_key = await queued_call()
    for call_id in (call.id, "0" * 24, "not-an-id"):
        communicator, _ = await subscribe(call_id, f"?api_key={other_key}")
        await expect_refusal(communicator, CloseCode.UNKNOWN_CALL, "unknown call")


async def test_key_without_calls_read_is_closed_4403_naming_the_scope():
    call, _, _ = await queued_call()
    organization = await Organization.objects.aget(pk=call.organization_id)
    key = await database_sync_to_async(new_key)(organization, ["calls:write", "widgets:read"])
    communicator, _ = await subscribe(call.id, f"?api_key={key}")
    await expect_refusal(communicator, CloseCode.MISSING_SCOPE, "calls:read")


@pytest.mark.parametrize(
    "query", ["", "?api_key=vwk_unknown", "?session_token=nope", "?api_key=&session_token="]
)
async def test_missing_or_bad_credentials_are_closed_4401(query):
    call, _, _ = await queued_call()
    communicator, _ = await subscribe(call.id, query)
    await expect_refusal(communicator, CloseCode.BAD_CREDENTIALS, "")


# --- what a subscriber receives ---


async def test_late_subscriber_receives_every_earlier_event_then_the_live_updates():
    call, token, key = await queued_call()
    caller = await start_call(call, token)  # the greeting is said and stored before we join
    communicator, _ = await subscribe(call.id, f"?api_key={key}")
    data = await connected_message(communicator)
    assert data["status"] == "in_progress"
    assert [(e["seq"], e["type"]) for e in data["events"]] == await stored_events(call)
    greeting = next(e for e in data["events"] if e["type"] == "transcript.final")
    assert greeting["data"]["role"] == "assistant" and greeting["data"]["text"] == "Hi there"

    await send_audio(caller, silence(200) + speech(700) + silence(900))
    await messages_until(
        caller,
        lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"],
        timeout=15,
    )
    await caller.send_json_to({"type": "end"})
    seen, code = await updates_until_closed(communicator)
    assert code == CloseCode.NORMAL == 1000
    lines = [
        (m["data"]["role"], m["data"]["text"]) for m in seen if m["type"] == "transcript_update"
    ]
    assert lines[0] == ("user", "what are your opening hours")
    assert lines[1][0] == "assistant" and "Nine to six" in lines[1][1]
    assert seen[-1]["type"] == "call_status_update"
    assert seen[-1]["data"]["status"] == "completed" and seen[-1]["data"]["end_reason"] == "hangup"
    await caller.wait()


async def test_twenty_subscribers_receive_every_update_in_order_and_are_closed_1000():
    call, token, key = await queued_call()
    subscribers = []
    for _ in range(20):
        communicator, _ = await subscribe(call.id, f"?api_key={key}")
        assert (await connected_message(communicator))["status"] == "queued"
        subscribers.append(communicator)
    caller = await start_call(call, token)
    await caller.send_json_to({"type": "end"})
    results = await asyncio.gather(*(updates_until_closed(s) for s in subscribers))
    await caller.wait()

    events = await stored_events(call)
    # Every event after `connected` up to call.ended, where the socket closes (events the
    # call records later, if any, are for the REST API and webhooks).
    ended_at = next(seq for seq, kind in events if kind == "call.ended")
    expected = [seq for seq, kind in events if kind != "call.created" and seq <= ended_at]
    for seen, code in results:
        assert code == CloseCode.NORMAL
        assert [m["data"]["event_seq"] for m in seen] == expected
    seen = results[0][0]
    assert [m["type"] for m in seen] == [
        "call_status_update",  # queued -> in_progress
        "call_status_update",  # call.started
        "transcript_update",  # the greeting
        "call_status_update",  # in_progress -> completed
        "call_status_update",  # call.ended
    ]
    greeting = seen[2]["data"]
    assert (
        greeting["role"] == "assistant" and greeting["text"] == "Hi there" == greeting["transcript"]
    )
    assert greeting["final"] is True and greeting["seq"] == 1
    assert [m["data"]["status"] for m in seen if m["type"] == "call_status_update"] == [
        "in_progress",
        "in_progress",
        "completed",
        "completed",
    ]


async def test_subscriber_to_an_ended_call_gets_everything_in_connected_and_is_closed_1000():
    call, token, key = await queued_call()
    caller = await start_call(call, token)
    await caller.send_json_to({"type": "end"})
    await caller.wait()
    communicator, _ = await subscribe(call.id, f"?api_key={key}")
    data = await connected_message(communicator)
    assert data["status"] == "completed" and data["status_code"] == 2
    assert [(e["seq"], e["type"]) for e in data["events"]] == await stored_events(call)
    assert "call.ended" in [e["type"] for e in data["events"]]
    seen, code = await updates_until_closed(communicator)
    assert seen == [] and code == CloseCode.NORMAL


async def test_a_subscribers_messages_are_answered_with_errors_and_never_affect_the_call():
    call, token, key = await queued_call()
    caller = await start_call(call, token)
    communicator, _ = await subscribe(call.id, f"?api_key={key}")
    await connected_message(communicator)
    before = await stored_events(call)
    for message in (
        {"type": "end"},
        {"type": "hello", "audio": "websocket"},
        {"type": "mute", "muted": True},
        {"type": "dance"},
    ):
        await communicator.send_json_to(message)
        reply = json.loads(await communicator.receive_from())
        assert reply["type"] == "error" and reply["error"], reply
    await communicator.send_to(bytes_data=speech(100)[:3200])
    assert json.loads(await communicator.receive_from())["type"] == "error"
    await communicator.send_to(text_data="not json")
    assert json.loads(await communicator.receive_from())["type"] == "error"
    await communicator.send_json_to({"type": "ping"})
    assert json.loads(await communicator.receive_from()) == {"type": "pong"}
    assert (await Call.objects.aget(pk=call.pk)).status == CallStatus.IN_PROGRESS
    assert await stored_events(call) == before
    await communicator.disconnect()
    await caller.send_json_to({"type": "end"})
    await caller.wait()


async def test_oversized_and_flooding_subscribers_are_closed_4413_and_4429():
    call, _, key = await queued_call()
    big, _ = await subscribe(call.id, f"?api_key={key}")
    await connected_message(big)
    await big.send_to(text_data='{"type": "ping", "x": "' + "a" * MAX_TEXT_BYTES + '"}')
    await expect_refusal(big, CloseCode.TOO_BIG, "bytes")
    big_binary, _ = await subscribe(call.id, f"?api_key={key}")
    await connected_message(big_binary)
    await big_binary.send_to(bytes_data=b"\x00" * 4000)
    await expect_refusal(big_binary, CloseCode.TOO_BIG, "bytes")
    flood, _ = await subscribe(call.id, f"?api_key={key}")
    await connected_message(flood)
    for _ in range(consumers.RATE_BURST + 50):
        await flood.send_to(text_data='{"type": "ping"}')
    seen, code = await updates_until_closed(flood)
    assert code == CloseCode.FLOODING and {"type": "pong"} in seen
    assert (await Call.objects.aget(pk=call.pk)).status == CallStatus.QUEUED


# --- end and cancel over the REST API ---


async def test_end_over_rest_says_goodbye_then_ends_completed_api_end():
    call, token, key = await queued_call()
    caller = await start_call(call, token)
    subscriber, _ = await subscribe(call.id, f"?api_key={key}")
    await connected_message(subscriber)

    response = await rest("POST", f"/v1/calls/{call.id}/end", key)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] is True and body["data"]["id"] == call.id

    seen, _ = await messages_until(caller, lambda m: m["type"] == "__closed__", timeout=15)
    said = [m["text"] for m in seen if m["type"] == "transcript" and m["role"] == "assistant"]
    assert said[-1] == GOODBYE
    assert {"type": "call.ended", "reason": "api_end"} in seen
    assert seen[-1] == {"type": "__closed__", "code": CloseCode.NORMAL}
    ended = await wait_for_status(call, CallStatus.COMPLETED)
    assert ended.end_reason == "api_end"
    updates, code = await updates_until_closed(subscriber)
    assert code == CloseCode.NORMAL
    assert updates[-1]["data"]["end_reason"] == "api_end"
    assert any(
        m["data"].get("text") == GOODBYE for m in updates if m["type"] == "transcript_update"
    )


async def set_goodbye(call: Call, text: str) -> None:
    await Assistant.objects.filter(pk=call.assistant_id).aupdate(goodbye_message=text)


async def test_end_over_rest_says_the_assistants_own_goodbye_line():
    call, token, key = await queued_call()
    await set_goodbye(call, "Bye from the bike shop.")
    caller = await start_call(call, token)
    assert (await rest("POST", f"/v1/calls/{call.id}/end", key)).status_code == 202
    seen, _ = await messages_until(caller, lambda m: m["type"] == "__closed__", timeout=15)
    said = [m["text"] for m in seen if m["type"] == "transcript" and m["role"] == "assistant"]
    assert said[-1] == "Bye from the bike shop."
    assert (await wait_for_status(call, CallStatus.COMPLETED)).end_reason == "api_end"


async def test_end_over_rest_without_a_goodbye_line_ends_at_once():
    call, token, key = await queued_call()
    await set_goodbye(call, "")
    caller = await start_call(call, token)
    assert (await rest("POST", f"/v1/calls/{call.id}/end", key)).status_code == 202
    seen, _ = await messages_until(caller, lambda m: m["type"] == "__closed__")
    assert {"type": "call.ended", "reason": "api_end"} in seen
    assert not any(m.get("text") == GOODBYE for m in seen)
    assert (await wait_for_status(call, CallStatus.COMPLETED)).end_reason == "api_end"


async def test_cancel_over_rest_stops_a_running_call_at_once_failed_canceled():
    call, token, key = await queued_call()
    caller = await start_call(call, token)
    response = await rest("POST", f"/v1/calls/{call.id}/cancel", key)
    assert response.status_code == 202, response.content
    seen, _ = await messages_until(caller, lambda m: m["type"] == "__closed__")
    assert {"type": "call.ended", "reason": "canceled"} in seen
    assert seen[-1] == {"type": "__closed__", "code": CloseCode.NORMAL}
    assert not any(m.get("text") == GOODBYE for m in seen)
    assert (await wait_for_status(call, CallStatus.FAILED)).end_reason == "canceled"


@pytest.mark.parametrize("action", ["end", "cancel"])
async def test_end_or_cancel_of_a_connected_call_before_hello_cancels_it(action):
    call, token, key = await queued_call()
    caller = await open_socket(call, token)
    assert json.loads(await caller.receive_from())["type"] == "webrtc.config"
    assert (await rest("POST", f"/v1/calls/{call.id}/{action}", key)).status_code == 202
    seen, _ = await messages_until(caller, lambda m: m["type"] == "__closed__")
    assert seen == [
        {"type": "call.ended", "reason": "canceled"},
        {"type": "__closed__", "code": CloseCode.NORMAL},
    ]
    assert (await wait_for_status(call, CallStatus.FAILED)).end_reason == "canceled"


@pytest.mark.parametrize("action", ["end", "cancel"])
async def test_end_or_cancel_of_a_queued_call_ends_it_at_once_and_its_token_is_refused(action):
    call, token, key = await queued_call()
    subscriber, _ = await subscribe(call.id, f"?api_key={key}")
    await connected_message(subscriber)
    response = await rest("POST", f"/v1/calls/{call.id}/{action}", key)
    assert response.status_code == 200, response.content
    data = response.json()["data"]
    assert data["status_label"] == "failed" and data["end_reason"] == "canceled"
    updates, code = await updates_until_closed(subscriber)
    assert code == CloseCode.NORMAL and updates[-1]["data"]["end_reason"] == "canceled"
    caller = await open_socket(call, token)
    message = json.loads(await caller.receive_from())
    assert message["type"] == "error" and message["code"] == CloseCode.ALREADY_CONNECTED


@pytest.mark.parametrize("action", ["end", "cancel"])
async def test_end_or_cancel_of_an_ended_call_is_409_naming_its_status(action):
    call, _, key = await queued_call()
    assert (await rest("POST", f"/v1/calls/{call.id}/cancel", key)).status_code == 200
    before = await stored_events(call)
    response = await rest("POST", f"/v1/calls/{call.id}/{action}", key)
    assert response.status_code == 409
    assert response.json() == {
        "status": False,
        "message": "The call has already ended (failed).",
    }
    assert await stored_events(call) == before


@pytest.mark.parametrize("method, suffix", [("GET", "live"), ("POST", "end"), ("POST", "cancel")])
async def test_another_organizations_call_is_404_and_left_alone(method, suffix):
    call, _, _ = await queued_call()
    _, _, other_key = await queued_call()
    response = await rest(method, f"/v1/calls/{call.id}/{suffix}", other_key)
    assert response.status_code == 404 and response.json()["status"] is False
    assert (await Call.objects.aget(pk=call.pk)).status == CallStatus.QUEUED
    assert not await LiveSessionToken.objects.filter(call_id=call.pk).aexists()
