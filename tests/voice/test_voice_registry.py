"""Building, sharing and closing providers through the registry."""

from __future__ import annotations

import asyncio
import threading

from conftest import FakeBrain, FakeStt, FakeTts, FakeVad, feed, quiet, tone

from voice.config import ProviderSpec, SessionConfig
from voice.events import CallEnded, TurnTimings
from voice.providers import registry
from voice.session import Session

WARMED: list[str] = []


class WarmVad(FakeVad):
    def __init__(self, **options):
        super().__init__()
        self.options = options

    def warm_up(self) -> None:
        WARMED.append("vad")


class WarmTts(FakeTts):
    def warm_up(self) -> None:
        WARMED.append("tts")


for kind, name, target in [
    ("vad", "fake", "WarmVad"),
    ("stt", "fake", "FakeStt"),
    ("brain", "fake", "FakeBrain"),
    ("tts", "fake", "WarmTts"),
]:
    registry.register(kind, name, f"{__name__}:{target}")
FakeStt = FakeStt  # re-exported for the registry's "module:Class" paths
FakeBrain = FakeBrain


def fake_config(**changes) -> SessionConfig:
    values = dict(
        vad=ProviderSpec("fake"),
        stt=ProviderSpec("fake"),
        brain=ProviderSpec("fake"),
        tts=ProviderSpec("fake"),
        first_message="Hi.",
        pace_audio=False,
        speech_start_ms=60,
        endpoint_silence_ms=300,
        silence_timeout_seconds=0,
        max_call_seconds=0,
    )
    values.update(changes)
    return SessionConfig(**values)


async def test_warm_up_builds_and_warms_once_and_sessions_share_it():
    cache = registry.ProviderCache()
    WARMED.clear()
    first = await registry.warm_up(fake_config(), cache)
    second = await registry.warm_up(fake_config(first_message="other"), cache)
    assert first.vad is second.vad and first.tts is second.tts and not first.owned
    assert sorted(WARMED) == ["tts", "vad"]
    other = await registry.warm_up(fake_config(vad=ProviderSpec("fake", {"x": 1})), cache)
    assert other.vad is not first.vad and other.tts is first.tts
    sessions = [Session(fake_config(), providers=first) for _ in range(2)]
    for session in sessions:
        await session.start()
        await session.close()
    # Shared providers stay open for the next calls.
    assert first.tts._worker._executor is not None  # noqa: SLF001
    await cache.aclose()


async def test_a_session_without_providers_builds_owns_and_closes_them():
    before = set(threading.enumerate())
    session = Session(fake_config())
    events = []

    async def pump():
        async for event in session.events():
            events.append(event)

    task = asyncio.create_task(pump())
    await session.start()
    await feed(session, tone(300) + quiet(400))
    for _ in range(200):
        if any(isinstance(e, TurnTimings) for e in events):
            break
        await asyncio.sleep(0.01)
    await session.close()
    await task
    assert isinstance(events[-1], CallEnded)
    assert any(isinstance(e, TurnTimings) for e in events)
    assert set(threading.enumerate()) - before == set()
