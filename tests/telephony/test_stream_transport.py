"""The Twilio media stream transport's accounting: what the caller heard is the last mark
Twilio echoed, and marks echoed for audio a `clear` dropped are not counted."""

from __future__ import annotations

import asyncio
import base64

import pytest

from telephony.media import CHUNK_BYTES, CHUNK_MS, TwilioStreamTransport
from voice.audio import mulaw_to_pcm16


class Wire:
    """Stands in for the consumer: records what the transport sends."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.closed: list[int] = []

    async def send_event(self, message: dict) -> None:
        self.sent.append({**message, "streamSid": "MZ1"})

    def send_soon(self, message: dict) -> None:
        asyncio.get_running_loop().create_task(self.send_event(message))

    async def close_after_end(self, code: int) -> None:
        self.closed.append(code)


class Runtime:
    def __init__(self) -> None:
        self.heard: list[int] = []

    def report_heard(self, ms: int) -> None:
        self.heard.append(ms)


def engine_audio(ms: int) -> bytes:
    """A 440 Hz tone at 16 kHz PCM16 (not silence: mu-law must carry something)."""
    import numpy as np

    t = np.arange(16 * ms) / 16000
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


def make() -> tuple[TwilioStreamTransport, Wire, Runtime]:
    wire, runtime = Wire(), Runtime()
    transport = TwilioStreamTransport(wire, "MZ1")  # type: ignore[arg-type]
    transport.runtime = runtime  # type: ignore[assignment]
    return transport, wire, runtime


def marks(wire: Wire) -> list[str]:
    return [m["mark"]["name"] for m in wire.sent if m["event"] == "mark"]


async def test_audio_goes_out_as_mulaw_chunks_each_followed_by_a_mark():
    transport, wire, _ = make()
    for _ in range(10):  # 200 ms in 20 ms engine frames
        await transport.send_audio(engine_audio(20))
    media = [m for m in wire.sent if m["event"] == "media"]
    # 8 kHz mu-law: 40 ms chunks of 320 bytes; the resampler may hold a few samples back.
    assert len(media) in (4, 5)
    for message in media:
        chunk = base64.b64decode(message["media"]["payload"])
        assert len(chunk) == CHUNK_BYTES
        assert max(abs(x) for x in memoryview(mulaw_to_pcm16(chunk)).cast("h")) > 1000
    # media, mark, media, mark...
    assert [m["event"] for m in wire.sent] == ["media", "mark"] * len(media)
    assert all(m["streamSid"] == "MZ1" for m in wire.sent)
    assert transport.sent_ms == CHUNK_MS * len(media)


async def test_heard_is_the_last_echoed_mark_of_the_current_utterance():
    transport, wire, runtime = make()
    await transport.send_audio(engine_audio(400))  # an earlier utterance
    for name in marks(wire):
        transport.mark_echoed(name)
    before = transport.sent_ms
    transport.utterance_started()
    wire.sent.clear()
    await transport.send_audio(engine_audio(400))
    names = marks(wire)
    transport.mark_echoed(names[2])  # three chunks played
    assert runtime.heard[-1] == 3 * CHUNK_MS
    transport.mark_echoed(names[1])  # an old echo changes nothing
    assert runtime.heard[-1] == 3 * CHUNK_MS
    assert transport.acked_ms == before + 3 * CHUNK_MS


async def test_marks_echoed_after_a_clear_are_not_heard():
    transport, wire, runtime = make()
    transport.utterance_started()
    await transport.send_audio(engine_audio(800))
    names = marks(wire)
    transport.mark_echoed(names[0])
    transport.mark_echoed(names[1])
    heard_before = runtime.heard[-1]
    transport.interrupted()
    await asyncio.sleep(0)  # the clear goes out
    assert wire.sent[-1] == {"event": "clear", "streamSid": "MZ1"}
    # Twilio echoes every pending mark at once after a clear: none was heard.
    for name in names[2:]:
        transport.mark_echoed(name)
    assert runtime.heard[-1] == heard_before == 2 * CHUNK_MS
    # The next utterance counts from its own start.
    transport.utterance_started()
    wire.sent.clear()
    await transport.send_audio(engine_audio(200))
    transport.mark_echoed(marks(wire)[0])
    assert runtime.heard[-1] == CHUNK_MS


@pytest.mark.parametrize("bad", ["zz", "m999", ""])
async def test_unknown_marks_are_ignored(bad):
    transport, wire, runtime = make()
    await transport.send_audio(engine_audio(200))
    transport.mark_echoed(bad)
    assert runtime.heard == []
