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

Guards against Whisper's two failure modes on short turns, decoding loops ("When I'm open,
when I'm open, when I'm open, when I'm") and text invented over near-silence ("Thank you."):

* the decoder's own thresholds, as in Whisper's ``transcribe()``: a decode whose text
  compresses too well (``compression_ratio_threshold``) or whose average log-probability is
  too low (``log_prob_threshold``) is tried again with sampling at a higher temperature
  (``temperature_increment``; at most two retries, reusing the encoder's output); a window
  the model itself thinks silent (``no_speech_threshold``, with a low log-probability) gives
  no text (0.9 by default, not Whisper's 0.6: the VAD has already heard speech, and clear
  speech through 8 kHz phone audio measured 0.81);
* no conditioning on previous text (every turn is decoded on its own);
* ``trim_repeats``: a phrase repeated back to back (the whole utterance twice, say) is
  collapsed to one occurrence, with a trailing cut-off repeat dropped (see
  :func:`collapse_repeats`; digit sequences such as "five five five" are kept), and one of
  Whisper's known phrases for silence ("Thank you.", "Thanks for watching!") is dropped when
  the audio is near-silent or the model's no-speech probability is high.

Transcription runs in a bounded pool shared by every call using the model: ``workers``
threads (0: the cores divided by ``cpu_threads``), each with its own CTranslate2 replica, so
several callers finishing at once are transcribed in parallel, not one behind the other.
"""

from __future__ import annotations

import os
import re
import zlib
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

    TUNING = (
        "beam_size",
        "mode",
        "pad_ms",
        "short_max_seconds",
        "compression_ratio_threshold",
        "log_prob_threshold",
        "no_speech_threshold",
        "temperature_increment",
        "trim_repeats",
    )

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
        workers: int = 0,
        compression_ratio_threshold: float = 2.4,
        log_prob_threshold: float = -1.0,
        no_speech_threshold: float = 0.9,
        temperature_increment: float = 0.2,
        trim_repeats: bool = True,
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
        self.workers = workers or pool_size(cpu_threads)
        self._model = faster_whisper.WhisperModel(
            self.model_source,
            device="cpu",
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            num_workers=self.workers,
        )
        self._tokenizers: dict[str, object] = {}
        self._worker = Worker("whisper", threads=self.workers)
        self.tune(
            beam_size=beam_size,
            mode=mode,
            pad_ms=pad_ms,
            short_max_seconds=short_max_seconds,
            compression_ratio_threshold=compression_ratio_threshold,
            log_prob_threshold=log_prob_threshold,
            no_speech_threshold=no_speech_threshold,
            temperature_increment=temperature_increment,
            trim_repeats=trim_repeats,
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
        if near_silent(audio, SILENT_RMS):  # nothing audible: whatever Whisper says is made up
            return ""
        try:
            if self.mode == "short" and audio.size <= self.short_max_samples:
                text, no_speech = self._short(audio, language)
            else:
                text, no_speech = self._standard(audio, language)
        except Exception as exc:
            raise ProviderError(f"faster-whisper failed: {type(exc).__name__}: {exc}") from exc
        if not self.trim_repeats:
            return text
        if is_silence_phrase(text) and (no_speech > self.no_speech_threshold or near_silent(audio)):
            return ""
        return collapse_repeats(text)

    def _temperatures(self) -> list[float]:
        """0, then at most two fallback temperatures (each retry costs a decode)."""
        step = self.temperature_increment
        if step <= 0:
            return [0.0]
        return [0.0] + [t for t in (step, 2 * step) if t <= 1.0 + 1e-9]

    def _standard(self, audio: np.ndarray, language: str) -> tuple[str, float]:
        """(text, the highest no-speech probability of its segments)."""
        segments, _ = self._model.transcribe(
            audio,
            language=language or None,
            beam_size=self.beam_size,
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
            temperature=self._temperatures(),
            compression_ratio_threshold=self.compression_ratio_threshold,
            log_prob_threshold=self.log_prob_threshold,
            no_speech_threshold=self.no_speech_threshold,
        )
        segments = list(segments)
        no_speech = max((s.no_speech_prob for s in segments), default=0.0)
        return " ".join(s.text.strip() for s in segments).strip(), no_speech

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

    def _short(self, audio: np.ndarray, language: str) -> tuple[str, float]:
        """(text, the model's no-speech probability) for one short utterance."""
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
        suppress = self._fw.transcribe.get_suppressed_tokens(tokenizer, [-1])
        best: tuple[float, str] | None = None
        no_speech = 0.0
        for temperature in self._temperatures():
            sampling = (
                {"beam_size": 1, "sampling_topk": 0, "sampling_temperature": temperature}
                if temperature > 0
                else {"beam_size": self.beam_size}
            )
            result = self._model.model.generate(
                encoded,
                [prompt],
                max_length=min(448, len(prompt) + 24 + int(seconds * 10)),
                suppress_blank=True,
                suppress_tokens=suppress,
                return_scores=True,
                return_no_speech_prob=True,
                **sampling,
            )[0]
            tokens = result.sequences_ids[0]
            # As faster-whisper: the score is length-normalised; back to a sum, then averaged.
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            if temperature == 0:
                no_speech = result.no_speech_prob
                if no_speech > self.no_speech_threshold and avg_logprob < self.log_prob_threshold:
                    return "", no_speech  # the model hears no speech: whatever it decoded
            text = _text_within(tokens, tokenizer, seconds - 0.1)
            if best is None or avg_logprob > best[0]:
                best = (avg_logprob, text)
            if (
                compression_ratio(text) <= self.compression_ratio_threshold
                and avg_logprob >= self.log_prob_threshold
            ):
                return text, no_speech
        return (best[1] if best else ""), no_speech

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


def pool_size(cpu_threads: int, cores: int | None = None) -> int:
    """How many transcriptions run at once: the cores divided by each one's threads (at
    least one; ``cpu_threads`` 0 lets one transcription use every core)."""
    cores = cores or os.cpu_count() or 1
    if cpu_threads <= 0:
        return 1
    return max(1, cores // cpu_threads)


def compression_ratio(text: str) -> float:
    """Whisper's repetition measure: how much better than 1:1 the text compresses."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


_WORD = re.compile(r"[^\w']+")
_NUMBER_WORDS = frozenset(
    "zero oh o one two three four five six seven eight nine ten eleven twelve hundred "
    "thousand double triple".split()
)


def _key(word: str) -> str:
    return _WORD.sub("", word.lower())


def _is_number(words: list[str]) -> bool:
    return all(w in _NUMBER_WORDS or w.isdigit() for w in words)


def collapse_repeats(text: str) -> str:
    """``text`` with every phrase repeated back to back (case and punctuation aside) kept
    once, and a cut-off repeat at the very end dropped: Whisper's decoding loops.

    Phrases of two words or more count from two occurrences, single words from four ("no
    no" and "very very" stay); digit and number words are never collapsed ("five five five
    one two three four" is a phone number)."""
    words = text.split()
    keys = [_key(w) for w in words]
    out: list[str] = []
    i = 0
    while i < len(words):
        best_n, best_end = 0, i + 1
        for n in range(1, (len(words) - i) // 2 + 1):
            phrase = keys[i : i + n]
            if not all(phrase) or _is_number(phrase):
                continue
            k = 1
            while keys[i + k * n : i + (k + 1) * n] == phrase:
                k += 1
            if k < (4 if n == 1 else 2):
                continue
            end = i + k * n
            tail = keys[end:]
            if tail and len(tail) < n and tail == phrase[: len(tail)]:
                end = len(words)  # "..., when I'm open, when I'm": the loop was cut off
            if end - i > best_end - i or (end - i == best_end - i and n < best_n):
                best_n, best_end = n, end
        if best_n:
            out += words[i : i + best_n]
            i = best_end
        else:
            out.append(words[i])
            i += 1
    result = " ".join(out)
    if result != text.strip():
        result = result.rstrip(",;:- ")
    return result


#: What Whisper says over silence or noise (from its training subtitles), normalised.
SILENCE_PHRASES = frozenset(
    (
        "thank you",
        "thank you very much",
        "thanks",
        "thanks for watching",
        "thank you for watching",
        "thanks for watching and see you next time",
        "please subscribe",
        "you",
        "subtitles by the amaraorg community",
    )
)


def is_silence_phrase(text: str) -> bool:
    """Whether ``text`` is one of Whisper's usual inventions over near-silence."""
    return " ".join(_key(w) for w in text.split() if _key(w)) in SILENCE_PHRASES


#: Loudest 30 ms under -50 dBFS: no speech at all, not worth decoding (noise this quiet
#: gave "Thank you." and "I'm going to put it on the top of the head.").
SILENT_RMS = 0.00316
#: Loudest 30 ms under -40 dBFS: Whisper's usual phrases for silence are dropped.
QUIET_RMS = 0.01


def near_silent(audio: np.ndarray, threshold: float = QUIET_RMS) -> bool:
    """No 30 ms stretch of ``audio`` (floats in [-1, 1]) louder than ``threshold`` RMS."""
    frame = 480
    usable = audio.size // frame * frame
    if usable == 0:
        return True
    frames = audio[:usable].reshape(-1, frame)
    return float(np.sqrt((frames**2).mean(axis=1)).max()) < threshold
