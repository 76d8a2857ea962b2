"""Warm start: load and warm the default speech stack once per server process, before it
accepts calls, so the first call is as fast as the tenth.

`widgetsite.serve` calls :func:`warm_start` before daphne binds its port (setting
``VOICE_WARM_START``, on by default). The providers land in the process-wide cache
(`voice.providers.registry.default_cache`) under the same keys a call's default speech
settings give, operator options included, so the first call finds them there.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from assistants.models import DEFAULT_SPEECH
from voice.providers.registry import KINDS, default_cache

logger = logging.getLogger(__name__)


def warm_default_stack() -> dict[str, float]:
    """Build and warm the default provider of each stage (VAD, speech-to-text, reply engine,
    text-to-speech) in the shared cache; seconds per stage. A stage that cannot load (a
    model not installed) is logged and skipped: its first call loads it, or reports why."""
    from calls.runtime import _provider_spec  # the spec a call with default speech gets

    default_cache.max_per_kind = settings.VOICE_PROVIDER_CACHE_SIZE

    seconds: dict[str, float] = {}
    for stage in KINDS:  # one by one: side by side measured no faster on 2 busy cores
        spec = _provider_spec("warm-start", stage, DEFAULT_SPEECH[stage])
        started = time.perf_counter()
        try:
            default_cache.get(stage, spec, warm=True)
        except Exception as exc:
            logger.warning("warm start: %s %s not loaded: %s", stage, spec.name, exc)
            continue
        seconds[stage] = time.perf_counter() - started
    return seconds


def warm_start() -> dict[str, float]:
    """:func:`warm_default_stack` unless ``VOICE_WARM_START`` is off; logs what it took."""
    if not getattr(settings, "VOICE_WARM_START", True):
        return {}
    started = time.perf_counter()
    seconds = warm_default_stack()
    logger.info(
        "warm start: speech models ready in %.1f s (%s)",
        time.perf_counter() - started,
        ", ".join(f"{stage} {s:.1f} s" for stage, s in seconds.items()) or "none",
    )
    return seconds
