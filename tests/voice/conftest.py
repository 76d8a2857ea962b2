"""Fixtures and fake providers for the voice engine's tests (no Django, no database)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pytest tests/voice` from anywhere, package installed or not
    sys.path.insert(0, str(ROOT))

from voice.config import SessionConfig  # noqa: E402
from voice.events import AudioOut, CallEnded, Event  # noqa: E402
from voice.providers.base import BrainRequest, ReplyPart, Worker  # noqa: E402
from voice.session import Session  # noqa: E402

FRAME = 640  # bytes: 20 ms at 16 kHz


def tone(ms: int, amplitude: int = 8000, freq: float = 220.0) -> bytes:
    """A loud tone: the fake VAD hears it as speech."""
    t = np.arange(16 * ms) / 16000
    return (np.sin(2 * np.pi * freq * t) * amplitude).astype("<i2").tobytes()


def quiet(ms: int) -> bytes:
    return b"\x00\x00" * (16 * ms)


class FakeVadStream:
    def __init__(self, on_result: Callable[[float, int, int], None], window: int) -> None:
        self._on_result = on_result
        self._window = window
        self._buffer = b""
        self.position = 0
        self.closed = False

    def push(self, pcm: bytes) -> None:
        self._buffer += pcm
        size = self._window * 2
        while len(self._buffer) >= size and not self.closed:
            frame, self._buffer = self._buffer[:size], self._buffer[size:]
            rms = float(np.sqrt(np.mean(np.frombuffer(frame, "<i2").astype(np.float64) ** 2)))
            self.position += self._window
            self._on_result(1.0 if rms > 500 else 0.0, self.position, self._window)

    def close(self) -> None:
        self.closed = True


class FakeVad:
    """Energy VAD, synchronous, 20 ms windows."""

    def __init__(self, window: int = 320) -> None:
        self.window = window
        self.streams: list[FakeVadStream] = []

    def open_stream(self, on_result: Callable[[float, int, int], None]) -> FakeVadStream:
        stream = FakeVadStream(on_result, self.window)
        self.streams.append(stream)
        return stream


class FakeStt:
    """Returns ``texts`` in order (the last one repeats); may be slow, fail or hang."""

    def __init__(
        self, texts: list[str] | None = None, delay: float = 0.0, fail: Exception | None = None
    ) -> None:
        self.texts = list(texts or ["hello"])
        self.delay = delay
        self.fail = fail
        self.calls: list[int] = []  # audio length in ms of each call

    async def transcribe(self, pcm: bytes, language: str) -> str:
        self.calls.append(len(pcm) // 32)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return self.texts.pop(0) if len(self.texts) > 1 else self.texts[0]


class FakeBrain:
    """Answers ``"You said: <text>."`` (or ``answer(text)``); ``end_on`` ends the call."""

    def __init__(
        self,
        answer: Callable[[str], str] | None = None,
        speculative: bool = True,
        delay: float = 0.0,
        fail: Exception | None = None,
        end_on: str = "goodbye",
    ) -> None:
        self.answer = answer or (lambda text: f"You said: {text}.")
        self.speculative = speculative
        self.delay = delay
        self.fail = fail
        self.end_on = end_on
        self.requests: list[BrainRequest] = []

    async def reply(self, request: BrainRequest) -> AsyncIterator[ReplyPart]:
        self.requests.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        if self.end_on and self.end_on in request.user_text.lower():
            yield ReplyPart(request.goodbye_message, end_call=True)
            return
        for word in self.answer(request.user_text).split(" "):
            yield ReplyPart(word + " ")


class FakeTts:
    """``ms_per_word`` of a quiet tone per word; runs in its own worker thread like the real
    providers (so thread clean-up is tested too)."""

    def __init__(
        self, ms_per_word: int = 100, delay: float = 0.0, fail: Exception | None = None
    ) -> None:
        self.ms_per_word = ms_per_word
        self.delay = delay
        self.fail = fail
        self.texts: list[str] = []
        self._worker = Worker("fake-tts")

    def _render(self, text: str) -> bytes:
        if self.fail is not None:
            raise self.fail
        return tone(self.ms_per_word * max(1, len(text.split())), amplitude=1000, freq=440)

    async def synthesize(self, text: str) -> bytes:
        self.texts.append(text)
        if self.delay:
            await asyncio.sleep(self.delay)
        return await self._worker.run(self._render, text)

    async def aclose(self) -> None:
        await self._worker.aclose()


def fake_providers(**overrides: Any) -> dict[str, Any]:
    providers: dict[str, Any] = {
        "vad": FakeVad(),
        "stt": FakeStt(),
        "brain": FakeBrain(),
        "tts": FakeTts(),
    }
    providers.update(overrides)
    return providers


def fast_config(**changes: Any) -> SessionConfig:
    """Short timings, no pacing: tests run much faster than real time."""
    values: dict[str, Any] = {
        "first_message": "Hi {{name}}.",
        "variables": {"name": "Ann"},
        "speech_start_ms": 60,
        "min_interruption_ms": 100,
        "prefetch_silence_ms": 100,
        "endpoint_silence_ms": 300,
        "pre_speech_pad_ms": 0,
        "pace_audio": False,
        "silence_timeout_seconds": 0,
        "max_call_seconds": 0,
    }
    values.update(changes)
    return SessionConfig(**values)


class Recorder:
    """Collects a session's events in the background."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.events: list[Event] = []
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for event in self.session.events():
            self.events.append(event)
            self._changed.set()

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def types(self, audio: bool = False) -> list[str]:
        return [e.type for e in self.events if audio or not isinstance(e, AudioOut)]

    async def wait_for(self, predicate: Callable[[Event], bool], within: float = 5.0) -> Event:
        """The first event (already seen or coming) for which ``predicate`` is true."""
        async with asyncio.timeout(within):
            seen = 0
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                if self.task.done():
                    raise AssertionError(f"session ended first; events: {self.types()}")
                self._changed.clear()
                await self._changed.wait()

    async def wait_type(self, kind: type, within: float = 5.0, **fields: Any) -> Any:
        return await self.wait_for(
            lambda e: isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items()),
            within,
        )

    async def ended(self, within: float = 5.0) -> CallEnded:
        async with asyncio.timeout(within):
            await self.task
        assert isinstance(self.events[-1], CallEnded)
        return self.events[-1]


async def feed(session: Session, pcm: bytes, realtime: bool = False) -> None:
    """Push audio in 20 ms frames, yielding to the loop between frames."""
    for offset in range(0, len(pcm), FRAME):
        session.push_audio(pcm[offset : offset + FRAME])
        await asyncio.sleep(0.02 if realtime else 0)


@pytest.fixture
async def make_session():
    """``make_session(config=None, **providers)`` -> (session, recorder); closed at the end."""
    sessions: list[Session] = []

    async def factory(
        config: SessionConfig | None = None, start: bool = True, **providers: Any
    ) -> tuple[Session, Recorder]:
        session = Session(config or fast_config(), providers=fake_providers(**providers))
        sessions.append(session)
        recorder = Recorder(session)
        if start:
            await session.start()
        return session, recorder

    yield factory
    for session in sessions:
        await session.close()
        providers = session._providers  # noqa: SLF001 - the fakes' worker threads
        if providers is not None:
            await providers.aclose()
