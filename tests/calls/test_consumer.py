"""The call socket with Channels' WebsocketCommunicator: refusals with their close codes,
size and rate limits, a whole call, a client vanishing mid-reply, and the restart reaper."""

from __future__ import annotations

import asyncio
import json
import wave
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from accounts.models import Organization
from assistants.services import assistant_create
from calls import consumers, services
from calls.models import Call, CallStatus
from tests.calls.fakes import make_factory, silence, speech
from widgets.services import widget_create
from widgetsite.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = "https://shop.example"
APP = URLRouter(websocket_urlpatterns)


@pytest.fixture(autouse=True)
def fake_voice(settings, tmp_path):
    settings.VOICE_PROVIDERS_FACTORY = make_factory()
    settings.MEDIA_ROOT = tmp_path


def make_call(*, origin: str = ORIGIN, enabled_widget: bool = True):
    org = Organization.objects.create(name=f"org-{Organization.objects.count()}")
    assistant = assistant_create(
        organization=org,
        data={
            "name": "Shop",
            "system_prompt": "Help.",
            "starting_message": "Hi there",
            "knowledge": [{"question": "When are you open?", "answer": "Nine to six. Every day"}],
        },
    )
    widget = widget_create(
        organization=org, data={"assistant": assistant, "allowed_origins": [ORIGIN]}
    )
    return services.call_create(organization=org, assistant=assistant, widget=widget, origin=origin)


async def open_socket(call: Call, token: str, *, origin: str = ORIGIN, query: str | None = None):
    path = (
        f"/new-web-call/connection?assistant_id={call.assistant_id}&call_id={call.id}&token={token}"
    )
    communicator = WebsocketCommunicator(
        APP, path if query is None else query, headers=[(b"origin", origin.encode())]
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def expect_refusal(communicator, code: int, words: str):
    message = json.loads(await communicator.receive_from())
    if message["type"] == "webrtc.config":  # offered once the call is claimed
        message = json.loads(await communicator.receive_from())
    assert message["type"] == "error" and message["code"] == code
    assert words.lower() in message["message"].lower()
    closing = await communicator.receive_output()
    assert closing["type"] == "websocket.close"
    assert closing["code"] == code
    assert words.lower() in closing["reason"].lower()
    await communicator.wait()


async def messages_until(communicator, predicate, timeout: float = 10.0):  # noqa: ASYNC109
    """JSON messages (audio counted, not kept) until one matches the predicate."""
    seen, audio_bytes = [], 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        output = await communicator.receive_output(timeout=max(0.01, deadline - loop.time()))
        if output["type"] == "websocket.close":
            seen.append({"type": "__closed__", "code": output.get("code")})
            return seen, audio_bytes
        if output.get("bytes"):
            audio_bytes += len(output["bytes"])
            continue
        message = json.loads(output["text"])
        seen.append(message)
        if predicate(message):
            return seen, audio_bytes


async def send_audio(communicator, pcm: bytes, frame: int = 640):
    for i in range(0, len(pcm), frame):
        await communicator.send_to(bytes_data=pcm[i : i + frame])
        await asyncio.sleep(0.002)


async def test_socket_without_query_parameters_is_closed_with_4400():
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token, query="/new-web-call/connection")
    await expect_refusal(communicator, 4400, "required")


async def test_unknown_call_is_closed_with_4404():
    call, token = await database_sync_to_async(make_call)()
    query = f"/new-web-call/connection?assistant_id={call.assistant_id}&call_id={'0' * 24}&token={token}"
    await expect_refusal(await open_socket(call, token, query=query), 4404, "unknown call")


async def test_bad_token_is_closed_with_4401_and_the_call_stays_claimable():
    call, token = await database_sync_to_async(make_call)()
    await expect_refusal(await open_socket(call, "not-the-token"), 4401, "bad token")
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.QUEUED and refreshed.connected_at is None


async def test_expired_token_is_closed_with_4401():
    call, token = await database_sync_to_async(make_call)()
    await Call.objects.filter(pk=call.pk).aupdate(
        token_expires_at=timezone.now() - timedelta(seconds=1)
    )
    await expect_refusal(await open_socket(call, token), 4401, "expired")


async def test_origin_not_allowed_is_closed_with_4403():
    call, token = await database_sync_to_async(make_call)()
    await expect_refusal(
        await open_socket(call, token, origin="https://evil.example"), 4403, "not allowed"
    )


async def test_call_from_the_servers_own_page_is_joined_from_that_origin():
    # create-call allows this server's own pages (the admin preview); the socket must too.
    call, token = await database_sync_to_async(make_call)(origin="http://app.local:8000")
    path = (
        f"/new-web-call/connection?assistant_id={call.assistant_id}&call_id={call.id}&token={token}"
    )
    headers = [(b"origin", b"http://app.local:8000"), (b"host", b"app.local:8000")]
    communicator = WebsocketCommunicator(APP, path, headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    assert json.loads(await communicator.receive_from())["type"] == "webrtc.config"
    await communicator.disconnect()


async def test_second_connection_with_the_same_token_is_closed_with_4409():
    call, token = await database_sync_to_async(make_call)()
    first = await open_socket(call, token)
    await expect_refusal(await open_socket(call, token), 4409, "already connected")
    await first.disconnect()


async def test_no_hello_closes_with_4408_and_fails_the_call(monkeypatch):
    monkeypatch.setattr(consumers, "HELLO_TIMEOUT_SECONDS", 0.2)
    call, token = await database_sync_to_async(make_call)()
    await expect_refusal(await open_socket(call, token), 4408, "hello")
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.FAILED and refreshed.end_reason == "no_hello"


async def test_oversized_audio_frame_closes_with_1009_and_ends_the_call():
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token)
    await communicator.send_json_to({"type": "hello", "audio": "websocket"})
    await messages_until(communicator, lambda m: m["type"] == "call.started")
    await communicator.send_to(bytes_data=b"\x00" * 4000)
    seen, _ = await messages_until(communicator, lambda m: m["type"] == "__closed__")
    assert seen[-1]["code"] == 1009, seen
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.COMPLETED and refreshed.end_reason == "client_gone"


async def test_flooding_client_is_closed_with_1008():
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token)
    for _ in range(consumers.RATE_BURST + 50):
        await communicator.send_to(text_data='{"type": "ping"}')
    seen, _ = await messages_until(communicator, lambda m: m["type"] == "__closed__")
    assert seen[-1] == {"type": "__closed__", "code": 1008}
    assert {
        "type": "error",
        "stage": "protocol",
        "code": 1008,
        "message": "Too many messages.",
    } in seen
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.is_terminal


async def test_whole_call_greets_answers_and_ends_completed_with_transcript_and_recording():
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token)
    await communicator.send_json_to({"type": "hello", "audio": "websocket"})
    seen, audio = await messages_until(
        communicator,
        lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"],
    )
    started = next(m for m in seen if m["type"] == "call.started")
    assert started["sample_rate"] == 16000 and started["audio"] == "websocket"
    assert seen[-1]["text"] == "Hi there" and audio > 0
    await send_audio(communicator, silence(200) + speech(700) + silence(900))
    seen, audio = await messages_until(
        communicator,
        lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"],
        timeout=15,
    )
    kinds = [m["type"] for m in seen]
    assert "user.speech.started" in kinds and "user.speech.stopped" in kinds
    user = next(m for m in seen if m["type"] == "transcript" and m["role"] == "user" and m["final"])
    assert user["text"] == "what are your opening hours"
    assert "Nine to six" in seen[-1]["text"] and audio > 0
    await communicator.send_json_to({"type": "end"})
    seen, _ = await messages_until(communicator, lambda m: m["type"] == "call.ended")
    assert seen[-1]["reason"] == "hangup"
    await communicator.wait()

    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.COMPLETED and refreshed.end_reason == "hangup"
    assert refreshed.duration_seconds and refreshed.duration_seconds > 0
    assert refreshed.transport == "websocket"
    entries = [e async for e in refreshed.transcript.order_by("seq")]
    assert [(e.role, e.text) for e in entries][:2] == [
        ("assistant", "Hi there"),
        ("user", "what are your opening hours"),
    ]
    assert "Nine to six" in entries[2].text
    assert await refreshed.turns.acount() >= 1
    with wave.open(refreshed.recording.path) as recording:
        assert recording.getnchannels() == 2 and recording.getframerate() == 16000
        assert recording.getnframes() > 16000


async def test_client_vanishing_mid_reply_ends_the_call_and_keeps_the_partial_transcript():
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token)
    await communicator.send_json_to({"type": "hello", "audio": "websocket"})
    await messages_until(
        communicator,
        lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"],
    )
    await send_audio(communicator, speech(700) + silence(900))
    await messages_until(
        communicator, lambda m: m["type"] == "assistant.speech.started", timeout=15
    )
    await communicator.disconnect()  # mid-reply

    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.COMPLETED and refreshed.end_reason == "client_gone"
    texts = [row async for row in refreshed.transcript.order_by("seq").values_list("role", "text")]
    assert texts[:2] == [("assistant", "Hi there"), ("user", "what are your opening hours")]
    # The reply being spoken when the client left is kept, marked interrupted.
    last = await refreshed.transcript.order_by("seq").alast()
    assert last.role == "assistant" and last.interrupted and "Nine to six" in last.text


@pytest.mark.django_db
def test_reaper_fails_orphaned_calls_and_leaves_live_ones(transactional_db):
    stale, _ = make_call()
    fresh, _ = make_call()
    queued, _ = make_call()
    long_ago = timezone.now() - timedelta(minutes=5)
    Call.objects.filter(pk=stale.pk).update(
        status=CallStatus.IN_PROGRESS, started_at=long_ago, heartbeat_at=long_ago
    )
    Call.objects.filter(pk=fresh.pk).update(
        status=CallStatus.IN_PROGRESS, started_at=long_ago, heartbeat_at=timezone.now()
    )

    from calls.reaper import reap_once

    assert reap_once() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    queued.refresh_from_db()
    assert stale.status == CallStatus.FAILED and stale.end_reason == "server_restart"
    assert stale.duration_seconds and stale.duration_seconds >= 299
    assert fresh.status == CallStatus.IN_PROGRESS
    assert queued.status == CallStatus.QUEUED
