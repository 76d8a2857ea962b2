"""Local speech-to-text with faster-whisper (CTranslate2).

Model folder: ``model_dir`` option, else the packaged Whisper base joined into
``cache_dir`` (see :mod:`voice.models`), else faster-whisper's own download of ``model``
by name (only where a model hub is reachable).

``mode="short"`` (default) encodes only the utterance plus ``pad_ms`` of silence instead of
Whisper's fixed 30 s window, the way whisper.cpp's ``audio_ctx`` does: on 2 cores a 3 s
utterance takes ~0.2 s instead of ~0.8 s, with the same words on our test speech.  It decodes
with timestamps and drops segments that start in the padding, where Whisper otherwise tends
to repeat the utterance.  Longer
utterances (over ``short_max_seconds``) and ``mode="standard"`` use the library's
``transcribe()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from voice.models import DEFAULT_CACHE_DIR, resolve_whisper
from voice.providers.base import ProviderError, ProviderUnavailable, Tunable, Worker


class WhisperStt(Tunable):
    """faster-whisper provider; thread-safe, shareable across calls.

    ``model_dir``, ``cache_dir``, ``model``, ``compute_type`` and ``cpu_threads`` pick and
    load the model (the operator's); the rest is tuning, cheap to vary per call through
    :meth:`tuned`.
    """

    TUNING = ("beam_size", "mode", "pad_ms", "short_max_seconds")

    def __init__(
        self,
        model_dir: str | None = None,
        cache_dir: str = DEFAULT_CACHE_DIR,
        model: str = "base",
        compute_type: str = "int8",
        cpu_threads: int = 2,
        beam_size: int = 1,
        mode: str = "short",
        pad_ms: int = 1000,
        short_max_seconds: float = 20.0,
    ) -> None:
        try:
            import ctranslate2
            import faster_whisper
        except ImportError as exc:  # pragma: no cover
            raise ProviderUnavailable(
                "STT 'faster-whisper' needs the faster-whisper package (pip install '.[offline]')"
            ) from exc
        self._ct2 = ctranslate2
        self._fw = faster_whisper
        folder = resolve_whisper(model_dir, cache_dir)
        self.model_source = str(folder) if folder else model
        self._model = faster_whisper.WhisperModel(
            self.model_source, device="cpu", compute_type=compute_type, cpu_threads=cpu_threads
        )
        self._tokenizers: dict[str, object] = {}
        self._worker = Worker("whisper")
        self.tune(
            beam_size=beam_size, mode=mode, pad_ms=pad_ms, short_max_seconds=short_max_seconds
        )

    def _apply(self, **tuning: Any) -> None:
        if "pad_ms" in tuning:
            self.pad_samples = int(16 * tuning.pop("pad_ms"))
        if "short_max_seconds" in tuning:
            self.short_max_samples = int(16000 * tuning.pop("short_max_seconds"))
        super()._apply(**tuning)

    async def transcribe(self, pcm: bytes, language: str) -> str:
        """Transcribe 16 kHz PCM16 mono audio in the provider's worker thread."""
        return await self._worker.run(self.transcribe_sync, pcm, language)

    def transcribe_sync(self, pcm: bytes, language: str) -> str:
        audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        if audio.size < 1600:  # under 0.1 s: nothing to say
            return ""
        try:
            if self.mode == "short" and audio.size <= self.short_max_samples:
                return self._short(audio, language)
            return self._standard(audio, language)
        except Exception as exc:
            raise ProviderError(f"faster-whisper failed: {type(exc).__name__}: {exc}") from exc

    def _standard(self, audio: np.ndarray, language: str) -> str:
        segments, _ = self._model.transcribe(
            audio,
            language=language or None,
            beam_size=self.beam_size,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        return " ".join(s.text.strip() for s in segments).strip()

    def _tokenizer(self, language: str) -> object:
        tokenizer = self._tokenizers.get(language)
        if tokenizer is None:
            tokenizer = self._fw.tokenizer.Tokenizer(
                self._model.hf_tokenizer,
                self._model.model.is_multilingual,
                task="transcribe",
                language=language or "en",
            )
            self._tokenizers[language] = tokenizer
        return tokenizer

    def _short(self, audio: np.ndarray, language: str) -> str:
        padded = np.concatenate((audio, np.zeros(self.pad_samples, dtype=np.float32)))
        features = self._model.feature_extractor(padded)
        frames = min(features.shape[-1] // 2 * 2, 3000)
        features = np.ascontiguousarray(features[:, :frames][None], dtype=np.float32)
        tokenizer: Any = self._tokenizer(language)
        # With timestamps the model says where each segment starts, so text it invents in
        # the silent padding (a repeat of the utterance, typically) can be dropped.
        prompt = list(tokenizer.sot_sequence)
        encoded = self._model.model.encode(self._ct2.StorageView.from_array(features), to_cpu=False)
        seconds = audio.size / 16000
        result = self._model.model.generate(
            encoded,
            [prompt],
            beam_size=self.beam_size,
            max_length=min(448, len(prompt) + 24 + int(seconds * 10)),
            suppress_blank=True,
            suppress_tokens=self._fw.transcribe.get_suppressed_tokens(tokenizer, [-1]),
        )
        return _text_within(result[0].sequences_ids[0], tokenizer, seconds - 0.1)

    def warm_up(self) -> None:
        """One pass on a little noise, so the first call does not pay for initialisation."""
        noise = (np.random.default_rng(0).standard_normal(16000) * 300).astype("<i2").tobytes()
        self._worker.run_sync(self.transcribe_sync, noise, "en")


def _text_within(tokens: list[int], tokenizer: Any, limit_seconds: float) -> str:
    """The text of the segments that start before ``limit_seconds``."""
    begin, eot = tokenizer.timestamp_begin, tokenizer.eot
    kept: list[int] = []
    segment: list[int] = []
    start: float | None = None
    for token in tokens:
        if token >= begin:
            time = (token - begin) * 0.02
            if start is None:
                if time >= limit_seconds:
                    break
                start = time
            else:  # the segment ends here
                kept += segment
                segment, start = [], None
        elif token < eot:
            if start is None:  # text without a leading timestamp
                start = 0.0
            segment.append(token)
    if start is not None and start < limit_seconds:
        kept += segment
    return tokenizer.decode(kept).strip()
