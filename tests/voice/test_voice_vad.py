"""The real VAD providers on espeak-ng speech."""

from __future__ import annotations

import shutil

import pytest

from bench._speech import synthesize
from voice.providers.vad_silero import SileroVad
from voice.providers.vad_webrtc import WebrtcVad
from voice.turns import TurnDetector

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def turn_events(vad, pcm: bytes) -> list[tuple[str, int]]:
    detector = TurnDetector(endpoint_silence_ms=500)
    events = []

    def on_result(prob, end, size):
        events.extend((e.kind.value, e.end // 16) for e in detector.process(prob, end, size))

    stream = vad.open_stream(on_result)
    for offset in range(0, len(pcm), 640):
        stream.push(pcm[offset : offset + 640])
    stream.close()
    return events


@pytest.mark.parametrize("make_vad", [lambda: SileroVad(batch_delay_ms=0), WebrtcVad])
def test_vad_finds_the_utterance(make_vad):
    speech = synthesize("What are your opening hours on Saturday?", "en-us")
    pcm = b"\x00\x00" * 16000 + speech + b"\x00\x00" * 16000
    events = turn_events(make_vad(), pcm)
    kinds = [k for k, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "endpoint"
    assert kinds.count("endpoint") == 1
    assert 1000 < events[0][1] < 1400
    speech_end_ms = 1000 + len(speech) // 32
    assert abs(events[-1][1] - speech_end_ms) < 300


async def test_silero_batches_calls_with_the_same_results_as_alone():
    import asyncio

    speech = synthesize("Do you deliver to Berlin?", "en-f3")
    pcm = b"\x00\x00" * 8000 + speech + b"\x00\x00" * 8000
    alone: list[float] = []
    SileroVad(batch_delay_ms=0).open_stream(lambda p, e, s: alone.append(p)).push(pcm)
    shared = SileroVad(batch_delay_ms=5)
    results: list[list[float]] = [[], [], []]
    streams = [shared.open_stream(lambda p, e, s, r=r: r.append(p)) for r in results]
    for offset in range(0, len(pcm), 640):
        for stream in streams:
            stream.push(pcm[offset : offset + 640])
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    for r in results:
        assert len(r) == len(alone)
        assert max(abs(a - b) for a, b in zip(r, alone, strict=True)) < 1e-4
