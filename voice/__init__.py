"""Framework-free realtime voice engine.

One :class:`voice.session.Session` per call: 16 kHz PCM16 mono audio in, events and assistant
audio out.  The engine never imports Django, reads no environment and touches no database;
everything it needs arrives in a :class:`voice.config.SessionConfig`.
"""

from __future__ import annotations

__all__ = ["SAMPLE_RATE", "FRAME_MS", "FRAME_BYTES"]

#: The engine's audio format, in and out: PCM16 LE mono at 16 kHz.
SAMPLE_RATE = 16_000
#: Assistant audio leaves the engine in frames of this length.
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000 * 2
