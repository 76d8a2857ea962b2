"""Providers by capability and name, imported lazily, and a process-wide cache of warm ones.

``create(kind, spec)`` builds a fresh provider (the caller owns and closes it);
``ProviderCache.get(kind, spec)`` returns one shared instance per (kind, name, identity
options), with the per-call tuning options applied to a light view of it, so a server loads
each model once; ``warm_up(config)`` builds and warms a whole set.  Which option is identity
and which tuning is declared in :mod:`voice.providers.options`.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import logging
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from voice.config import ProviderSpec, SessionConfig
from voice.providers.base import ProviderError, Tunable, aclose_provider
from voice.providers.options import split_options

log = logging.getLogger(__name__)

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


def _split(kind: str, spec: ProviderSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    """(options that build the provider, per-call tuning), checked against its schema."""
    try:
        return split_options(kind, spec.name, spec.options)
    except ValueError as exc:
        raise ProviderError(f"bad options for {kind} provider {spec.name!r}: {exc}") from None


def _construct(kind: str, name: str, options: dict[str, Any]) -> Any:
    cls = provider_class(kind, name)
    try:
        return cls(**options)
    except ProviderError:
        raise
    except TypeError as exc:
        raise ProviderError(f"bad options for {kind} provider {name!r}: {exc}") from exc


def create(kind: str, spec: ProviderSpec) -> Any:
    """A new provider instance (tuning applied in place: nobody shares it); raises
    :class:`ProviderError` with a clear message."""
    provider_class(kind, spec.name)  # unknown names first: the clearer error
    build_options, tuning = _split(kind, spec)
    provider = _construct(kind, spec.name, build_options)
    if tuning:
        provider.tune(**tuning)
    return provider


def _key(kind: str, name: str, build_options: dict[str, Any]) -> tuple[str, str, str]:
    # Identity only: tuning never makes a second copy.  Hashed: the options may hold
    # credentials, which must not sit around in plain keys.
    blob = json.dumps(build_options, sort_keys=True, default=str).encode()
    return kind, name, hashlib.sha256(blob).hexdigest()


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


class _Entry:
    """A cached base provider and the views handed out for it (weakly held: a view lives
    as long as the session using it)."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self.views: weakref.WeakSet[Any] = weakref.WeakSet()

    def view(self, tuning: dict[str, Any]) -> Any:
        if not isinstance(self.provider, Tunable):
            return self.provider  # nothing to tune (Silero, test fakes): shared as it is
        view = self.provider.tuned(**tuning)
        self.views.add(view)
        return view

    def in_use(self) -> bool:
        return len(self.views) > 0


class ProviderCache:
    """Thread-safe cache of shared, warm providers: one per kind, name and *identity*
    options (tuning options get a light view of it), at most ``max_per_kind`` per kind.

    The least recently used one goes when a kind is full; it is closed once no session
    holds a view of it any more (until then it is only out of the cache).
    """

    def __init__(self, max_per_kind: int = 8) -> None:
        self.max_per_kind = max_per_kind
        self._lock = threading.Lock()
        self._locks: dict[tuple[str, str, str], threading.Lock] = {}
        self._items: OrderedDict[tuple[str, str, str], _Entry] = OrderedDict()
        self._retired: list[_Entry] = []

    def _hit(self, key: tuple[str, str, str], tuning: dict[str, Any]) -> Any:
        """The view for a cached key, or None (call with the lock held)."""
        entry = self._items.get(key)
        if entry is None:
            return None
        self._items.move_to_end(key)
        return entry.view(tuning)

    def get(self, kind: str, spec: ProviderSpec, *, warm: bool = False) -> Any:
        """The shared instance (or a tuned view of it), built (and warmed up) on first
        use.  Blocking: call it from a thread, or use :meth:`aget`."""
        provider_class(kind, spec.name)
        build_options, tuning = _split(kind, spec)
        key = _key(kind, spec.name, build_options)
        with self._lock:
            found = self._hit(key, tuning)
            if found is not None:
                return found
            build_lock = self._locks.setdefault(key, threading.Lock())
        with build_lock:  # other keys can be built meanwhile
            with self._lock:
                found = self._hit(key, tuning)
                if found is not None:
                    return found
            provider = _construct(kind, spec.name, build_options)
            if warm and hasattr(provider, "warm_up"):
                provider.warm_up()
            with self._lock:
                entry = self._items[key] = _Entry(provider)
                view = entry.view(tuning)
                self._evict(kind)
                self._locks.pop(key, None)
                to_close = self._sweep()
        for old in to_close:
            _close_quietly(old)
        return view

    def _evict(self, kind: str) -> None:
        """Retire the least recently used entries of ``kind`` beyond the bound (lock held)."""
        keys = [k for k in self._items if k[0] == kind]
        for key in keys[: max(0, len(keys) - self.max_per_kind)]:
            self._retired.append(self._items.pop(key))

    def _sweep(self) -> list[Any]:
        """Retired providers no session uses any more, to close (lock held)."""
        idle = [e for e in self._retired if not e.in_use()]
        self._retired = [e for e in self._retired if e.in_use()]
        return [e.provider for e in idle]

    def size(self, kind: str) -> int:
        """How many providers of ``kind`` are cached."""
        with self._lock:
            return sum(1 for k in self._items if k[0] == kind)

    async def aget(self, kind: str, spec: ProviderSpec, *, warm: bool = True) -> Any:
        provider_class(kind, spec.name)
        build_options, tuning = _split(kind, spec)
        with self._lock:
            found = self._hit(_key(kind, spec.name, build_options), tuning)
        if found is not None:
            return found
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
            entries = list(self._items.values()) + self._retired
            self._items, self._retired = OrderedDict(), []
        for entry in entries:
            await aclose_provider(entry.provider)


def _close_quietly(provider: Any) -> None:
    close = getattr(provider, "close", None)
    if close is None:
        return  # dropped: the garbage collector frees it
    try:
        close()
    except Exception as exc:  # closing must not fail the call that triggered it
        log.warning("closing an evicted provider failed: %s", type(exc).__name__)


#: The process-wide cache.
default_cache = ProviderCache()


async def warm_up(config: SessionConfig, cache: ProviderCache | None = None) -> Providers:
    """Load and warm the providers ``config`` names, once per process; pass the result to
    ``Session(config, providers=...)``."""
    return await (cache or default_cache).providers(config)


def build(config: SessionConfig) -> Providers:
    """Fresh providers for one session, owned (closed) by it."""
    return Providers(*(create(kind, getattr(config, kind)) for kind in KINDS), owned=True)
