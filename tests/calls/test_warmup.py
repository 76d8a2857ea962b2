"""Warm start (`calls.warmup`): the default speech stack is built and warmed in the shared
cache once, before daphne binds its port, unless VOICE_WARM_START is off. Fake providers
here; tests/calls/test_warm_start_live.py runs the real stack behind a real daphne."""

from __future__ import annotations

import pytest
from daphne.server import Server

from calls import warmup
from calls.runtime import _provider_spec
from voice.providers import registry
from widgetsite import serve

WARMED: list[str] = []


class FakeProvider:
    def __init__(self, **options) -> None:
        self.options = options

    def warm_up(self) -> None:
        WARMED.append(type(self).__name__)


class FakeVad(FakeProvider):
    pass


class FakeStt(FakeProvider):
    pass


class FakeBrain(FakeProvider):
    pass


class FakeTts(FakeProvider):
    pass


class BrokenTts:
    def __init__(self, **options) -> None:
        raise registry.ProviderError("no voice installed")


@pytest.fixture
def fakes(monkeypatch):
    WARMED.clear()
    cache = registry.ProviderCache()
    monkeypatch.setattr(warmup, "default_cache", cache)
    for kind, name, cls in (
        ("vad", "silero", "FakeVad"),
        ("stt", "faster-whisper", "FakeStt"),
        ("brain", "knowledge", "FakeBrain"),
        ("tts", "piper", "FakeTts"),
    ):
        monkeypatch.setitem(registry.REGISTRY[kind], name, f"{__name__}:{cls}")
    return cache


def test_warm_start_builds_and_warms_each_default_provider_once(fakes, settings):
    settings.VOICE_WARM_START = True
    seconds = warmup.warm_start()
    assert set(seconds) == set(registry.KINDS)
    assert WARMED == ["FakeVad", "FakeStt", "FakeBrain", "FakeTts"]
    # Under the keys a call with default speech asks for: the first call finds them.
    for kind in registry.KINDS:
        spec = _provider_spec("any-assistant", kind, {"provider": spec_name(kind)})
        assert fakes.get(kind, spec).__class__.__name__.startswith("Fake")
        assert fakes.size(kind) == 1
    assert len(WARMED) == 4  # nothing built twice


def spec_name(kind: str) -> str:
    return {"vad": "silero", "stt": "faster-whisper", "brain": "knowledge", "tts": "piper"}[kind]


def test_warm_start_off_loads_nothing(fakes, settings):
    settings.VOICE_WARM_START = False
    assert warmup.warm_start() == {}
    assert WARMED == [] and all(fakes.size(kind) == 0 for kind in registry.KINDS)


def test_a_provider_that_cannot_load_is_skipped_and_logged(fakes, settings, monkeypatch, caplog):
    settings.VOICE_WARM_START = True
    monkeypatch.setitem(registry.REGISTRY["tts"], "piper", f"{__name__}:BrokenTts")
    seconds = warmup.warm_start()
    assert set(seconds) == {"vad", "stt", "brain"}
    assert "warm start: tts piper not loaded: no voice installed" in caplog.text


def test_the_server_warms_up_before_daphne_binds(monkeypatch):
    order: list[str] = []
    monkeypatch.setattr(warmup, "warm_start", lambda: order.append("warm"))
    monkeypatch.setattr(Server, "run", lambda self: order.append("bind"))
    server = serve.RedactingServer.__new__(serve.RedactingServer)
    server.run()
    assert order == ["warm", "bind"]
