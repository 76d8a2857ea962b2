"""Typed lines on the call socket (`{"type": "text"}`) and text-only calls (`hello.text_only`):
answered aloud and in the transcript, stored like spoken lines; bad text is refused and the
call goes on."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from calls.models import Call, CallStatus
from calls.protocol import MAX_TYPED_CHARS
from tests.calls.fakes import make_factory, silence, speech
from tests.calls.test_consumer import (
    expect_call_goes_on,
    expect_protocol_error,
    hang_up,
    make_call,
    messages_until,
    open_socket,
    send_audio,
    started_call,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fake_voice(settings, tmp_path):
    settings.VOICE_PROVIDERS_FACTORY = make_factory()
    settings.MEDIA_ROOT = tmp_path


def assistant_final(message) -> bool:
    return message["type"] == "transcript" and message["role"] == "assistant" and message["final"]


async def stored_lines(call: Call) -> list[tuple[str, str]]:
    refreshed = await Call.objects.aget(pk=call.pk)
    return [row async for row in refreshed.transcript.order_by("seq").values_list("role", "text")]


async def test_a_typed_line_is_answered_aloud_and_stored_like_a_spoken_one():
    call, communicator = await started_call()
    await communicator.send_json_to({"type": "text", "text": "  When are you open?  "})
    seen, audio = await messages_until(communicator, assistant_final, timeout=15)
    user = next(m for m in seen if m["type"] == "transcript" and m["role"] == "user")
    assert user["text"] == "When are you open?" and user["final"] and user["typed"] is True
    kinds = [m["type"] for m in seen]
    at = kinds.index("transcript")
    assert {"type": "state", "state": "thinking"} == seen[at + 1]
    assert kinds.index("assistant.speech.started") > at
    assert "user.speech.started" not in kinds
    assert "Nine to six" in seen[-1]["text"] and audio > 0
    await hang_up(communicator, call)
    assert (await stored_lines(call))[:2] == [
        ("assistant", "Hi there"),
        ("user", "When are you open?"),
    ]
    refreshed = await Call.objects.aget(pk=call.pk)
    assert await refreshed.turns.acount() >= 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": ""},
        {"text": " \n\t "},
        {"text": 42},
        {"text": ["hi"]},
        {"text": "x" * (MAX_TYPED_CHARS + 1)},
    ],
    ids=["missing", "empty", "blank", "number", "list", "too-long"],
)
async def test_bad_text_is_refused_and_the_call_goes_on(body):
    call, communicator = await started_call()
    await communicator.send_json_to({"type": "text", **body})
    await expect_protocol_error(communicator, f"1 to {MAX_TYPED_CHARS} characters")
    await expect_call_goes_on(communicator, call)
    await hang_up(communicator, call)
    assert [role for role, _ in await stored_lines(call)] == ["assistant"]


async def test_text_at_the_limit_is_taken():
    call, communicator = await started_call()
    await communicator.send_json_to({"type": "text", "text": "y" * MAX_TYPED_CHARS})
    await messages_until(communicator, assistant_final, timeout=15)
    await hang_up(communicator, call)
    assert ("user", "y" * MAX_TYPED_CHARS) in await stored_lines(call)


async def test_text_before_hello_is_refused_and_the_call_still_starts():
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token)
    await communicator.send_json_to({"type": "text", "text": "hello?"})
    await expect_protocol_error(communicator, "cannot take typed text now")
    await communicator.send_json_to({"type": "hello", "audio": "websocket"})
    seen, _ = await messages_until(communicator, assistant_final)
    started = next(m for m in seen if m["type"] == "call.started")
    assert started["text"] is True and started["text_only"] is False
    await hang_up(communicator, call)


async def test_typing_faster_than_the_limit_is_refused_and_the_call_goes_on():
    call, communicator = await started_call()
    for n in range(8):
        await communicator.send_json_to({"type": "text", "text": f"line {n}"})
    await expect_protocol_error(communicator, "too many typed messages")
    await expect_call_goes_on(communicator, call)
    await hang_up(communicator, call)


async def test_a_text_only_call_greets_takes_typed_lines_and_ignores_audio():
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token)
    await communicator.send_json_to({"type": "hello", "audio": "websocket", "text_only": True})
    seen, audio = await messages_until(communicator, assistant_final)
    started = next(m for m in seen if m["type"] == "call.started")
    assert started["text_only"] is True and started["text"] is True
    assert seen[-1]["text"] == "Hi there" and audio > 0
    await send_audio(communicator, speech(600) + silence(900))  # no microphone: not heard
    await asyncio.sleep(0.3)
    await communicator.send_json_to({"type": "text", "text": "When are you open?"})
    seen, audio = await messages_until(communicator, assistant_final, timeout=15)
    kinds = [m["type"] for m in seen]
    assert "user.speech.started" not in kinds
    user = next(m for m in seen if m["type"] == "transcript" and m["role"] == "user")
    assert user["text"] == "When are you open?" and user["typed"] is True
    # The caller's side runs as silence: call time goes on without a microphone.
    assert seen[-1]["start_ms"] > 0 and "Nine to six" in seen[-1]["text"] and audio > 0
    await hang_up(communicator, call)
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.COMPLETED and refreshed.transport == "websocket"
    assert (await stored_lines(call))[:2] == [
        ("assistant", "Hi there"),
        ("user", "When are you open?"),
    ]
