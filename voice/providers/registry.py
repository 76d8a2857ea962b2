"""Providers by capability and name, imported lazily, and a process-wide cache of warm ones.

``create(kind, spec)`` builds a fresh provider (the caller owns and closes it);
``ProviderCache.get(kind, spec)`` returns one shared instance per (kind, name, options), so a
server loads each model once; ``warm_up(config)`` builds and warms a whole set.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import threading
from dataclasses import dataclass
from typing import Any

from voice.config import ProviderSpec, SessionConfig
from voice.providers.base import ProviderError, aclose_provider

KINDS = ("vad", "stt", "brain", "tts")

#: kind -> name -> "module:Class"; options are passed as keyword arguments.
REGISTRY: dict[str, dict[str, str]] = {
    "vad": {
        "silero": "voice.providers.vad_silero:SileroVad",
        "webrtc": "voice.providers.vad_webrtc:WebrtcVad",
    },
    "stt": {
        "faster-whisper": "voice.providers.stt_whisper:WhisperStt",
        "openai": "voice.providers.stt_openai:OpenAiStt",
    },
    "brain": {
        "knowledge": "voice.providers.brain_knowledge:KnowledgeBrain",
        "openai": "voice.providers.brain_openai:OpenAiBrain",
    },
    "tts": {
        "piper": "voice.providers.tts_piper:PiperTts",
        "espeak": "voice.providers.tts_espeak:EspeakTts",
        "openai": "voice.providers.tts_openai:OpenAiTts",
    },
}


def register(kind: str, name: str, target: str) -> None:
    """Add or replace a provider (``target`` is ``"module:Class"``)."""
    REGISTRY.setdefault(kind, {})[name] = target


def provider_class(kind: str, name: str) -> type:
    try:
        target = REGISTRY[kind][name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY.get(kind, {})))
        raise ProviderError(f"unknown {kind} provider {name!r} (known: {known})") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def create(kind: str, spec: ProviderSpec) -> Any:
    """A new provider instance; raises :class:`ProviderError` with a clear message."""
    cls = provider_class(kind, spec.name)
    try:
        return cls(**spec.options)
    except ProviderError:
        raise
    except TypeError as exc:
        raise ProviderError(f"bad options for {kind} provider {spec.name!r}: {exc}") from exc


def _key(kind: str, spec: ProviderSpec) -> tuple[str, str, str]:
    # Hash the options: they may hold credentials, which must not sit around in plain keys.
    blob = json.dumps(spec.options, sort_keys=True, default=str).encode()
    return kind, spec.name, hashlib.sha256(blob).hexdigest()


@dataclass
class Providers:
    """The four providers a session uses.  ``owned``: the session closes them at its end."""

    vad: Any
    stt: Any
    brain: Any
    tts: Any
    owned: bool = False

    async def aclose(self) -> None:
        for provider in (self.vad, self.stt, self.brain, self.tts):
            await aclose_provider(provider)


class ProviderCache:
    """Thread-safe cache of shared, warm providers (one per kind, name and options)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._items: dict[tuple[str, str, str], Any] = {}

    def get(self, kind: str, spec: ProviderSpec, *, warm: bool = False) -> Any:
        """The shared instance, built (and warmed up) on first use.  Blocking: call it from
        a thread, or use :meth:`aget`."""
        key = _key(kind, spec)
        with self._lock:
            if key in self._items:
                return self._items[key]
            build_lock = self._locks.setdefault(key, threading.Lock())
        with build_lock:  # other keys can be built meanwhile
            with self._lock:
                if key in self._items:
                    return self._items[key]
            provider = create(kind, spec)
            if warm and hasattr(provider, "warm_up"):
                provider.warm_up()
            with self._lock:
                self._items[key] = provider
            return provider

    async def aget(self, kind: str, spec: ProviderSpec, *, warm: bool = True) -> Any:
        key = _key(kind, spec)
        with self._lock:
            if key in self._items:
                return self._items[key]
        return await asyncio.to_thread(self.get, kind, spec, warm=warm)

    async def providers(self, config: SessionConfig) -> Providers:
        """Shared providers for ``config`` (not owned by the session)."""
        vad, stt, brain, tts = await asyncio.gather(
            *(self.aget(kind, getattr(config, kind)) for kind in KINDS)
        )
        return Providers(vad, stt, brain, tts, owned=False)

    async def aclose(self) -> None:
        """Close every cached provider (at server shutdown)."""
        with self._lock:
            items, self._items = list(self._items.values()), {}
        for provider in items:
            await aclose_provider(provider)


#: The process-wide cache.
default_cache = ProviderCache()


async def warm_up(config: SessionConfig, cache: ProviderCache | None = None) -> Providers:
    """Load and warm the providers ``config`` names, once per process; pass the result to
    ``Session(config, providers=...)``."""
    return await (cache or default_cache).providers(config)


def build(config: SessionConfig) -> Providers:
    """Fresh providers for one session, owned (closed) by it."""
    return Providers(*(create(kind, getattr(config, kind)) for kind in KINDS), owned=True)
