"""Fast fake speech providers for the consumer tests (the real stack is tested in
tests/voice and tests/e2e). Loud audio is speech, the transcript is fixed, the reply is the
first knowledge answer (or a goodbye), and speech is a tone."""

from __future__ import annotations

import math
import struct

from voice.providers.base import ReplyPart
from voice.providers.registry import Providers

WINDOW = 512


class EnergyVadStream:
    def __init__(self, on_result) -> None:
        self.on_result = on_result
        self.buffer = bytearray()
        self.position = 0

    def push(self, pcm: bytes) -> None:
        self.buffer += pcm
        while len(self.buffer) >= WINDOW * 2:
            window = bytes(self.buffer[: WINDOW * 2])
            del self.buffer[: WINDOW * 2]
            samples = struct.unpack(f"<{WINDOW}h", window)
            rms = math.sqrt(sum(s * s for s in samples) / WINDOW)
            self.position += WINDOW
            self.on_result(1.0 if rms > 1000 else 0.0, self.position, WINDOW)

    def close(self) -> None:
        pass


class EnergyVad:
    def open_stream(self, on_result):
        return EnergyVadStream(on_result)


class FixedStt:
    def __init__(self, text: str) -> None:
        self.text = text

    async def transcribe(self, pcm: bytes, language: str) -> str:
        return self.text


class FirstAnswerBrain:
    speculative = True

    async def reply(self, request):
        if "goodbye" in request.user_text.lower():
            yield ReplyPart(text=request.goodbye_message, end_call=True)
            return
        answer = request.knowledge[0][1] if request.knowledge else request.fallback_message
        for sentence in answer.split(". "):
            yield ReplyPart(text=sentence)


class ToneTts:
    """20 ms of a 440 Hz tone per character (at most 2 s)."""

    async def synthesize(self, text: str) -> bytes:
        samples = min(len(text) * 320, 32000)
        return b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 16000)))
            for i in range(samples)
        )


def speech(ms: int) -> bytes:
    """Loud audio the fake VAD takes for speech."""
    return b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * 220 * i / 16000)))
        for i in range(16 * ms)
    )


def silence(ms: int) -> bytes:
    return b"\x00\x00" * 16 * ms


def make_factory(transcript: str = "what are your opening hours"):
    async def factory(config):
        return Providers(
            EnergyVad(), FixedStt(transcript), FirstAnswerBrain(), ToneTts(), owned=False
        )

    return factory
