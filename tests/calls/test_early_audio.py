"""Microphone audio that arrives before the call's session runs (before `hello`, or while
the session starts) is kept, a bounded amount, and heard once the session runs: a visitor
who speaks early is not lost."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async

from accounts.models import Organization
from assistants.services import assistant_create
from calls import services
from calls.runtime import EARLY_AUDIO_BYTES, EarlyAudio
from tests.calls.fakes import make_factory, silence, speech
from tests.calls.test_consumer import ORIGIN, messages_until, open_socket, send_audio
from widgets.services import widget_create


def test_early_audio_keeps_the_latest_two_seconds_in_whole_samples():
    early = EarlyAudio()
    assert EARLY_AUDIO_BYTES == 2 * 16000 * 2
    early.add(b"\x01\x00" * 16000)  # 1 s
    early.add(b"\x02\x00" * 24000)  # 1.5 s more: the oldest half second goes
    assert len(early) == EARLY_AUDIO_BYTES
    pcm = early.take()
    assert pcm[:2] == b"\x01\x00" and pcm[16000:16002] == b"\x02\x00"
    assert len(early) == 0 and early.take() == b""


def test_early_audio_with_an_odd_limit_still_drops_whole_samples():
    early = EarlyAudio(limit=7)
    early.add(b"\x01\x02\x03\x04\x05\x06\x07\x08")
    assert early.take() == b"\x03\x04\x05\x06\x07\x08"


def make_waiting_call():
    """A call whose assistant has no greeting: it listens from the start."""
    org = Organization.objects.create(name=f"early-{Organization.objects.count()}")
    assistant = assistant_create(
        organization=org,
        data={
            "name": "Shop",
            "system_prompt": "Help.",
            "starting_message": "",
            "knowledge": [{"question": "When are you open?", "answer": "Nine to six."}],
        },
    )
    widget = widget_create(
        organization=org, data={"assistant": assistant, "allowed_origins": [ORIGIN]}
    )
    return services.call_create(organization=org, assistant=assistant, widget=widget, origin=ORIGIN)


@pytest.mark.django_db(transaction=True)
async def test_speech_sent_before_hello_is_heard_once_the_call_starts(settings, tmp_path):
    settings.VOICE_PROVIDERS_FACTORY = make_factory("when are you open")
    settings.MEDIA_ROOT = tmp_path
    call, token = await database_sync_to_async(make_waiting_call)()
    communicator = await open_socket(call, token)
    # The whole utterance (and the silence that ends it) before `hello`: before the fix it
    # was dropped and the call waited for ever.
    await send_audio(communicator, speech(600) + silence(900))
    await communicator.send_json_to({"type": "hello", "audio": "websocket"})
    seen, _ = await messages_until(
        communicator,
        lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"],
    )
    kinds = [m["type"] for m in seen]
    assert kinds.index("call.started") < kinds.index("user.speech.started"), kinds
    user = [m for m in seen if m["type"] == "transcript" and m["role"] == "user"]
    assert user and user[-1]["text"] == "when are you open", seen
    assert seen[-1]["text"].startswith("Nine to six"), seen
    await communicator.send_json_to({"type": "end"})
    await messages_until(communicator, lambda m: m["type"] == "__closed__")
