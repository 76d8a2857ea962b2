"""eSpeak NG in-process (library and data from ``espeakng-loader``): instant, robotic."""

from __future__ import annotations

import ctypes
import threading

import numpy as np

from voice.audio import float_to_pcm16, resample
from voice.providers.base import ProviderError, ProviderUnavailable, Tunable, Worker

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH = 1, 2, 3
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Engine:
    """The process-wide eSpeak NG library: global state, so one lock around every use."""

    _instance: _Engine | None = None
    _create_lock = threading.Lock()

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:  # pragma: no cover
            raise ProviderUnavailable(
                "TTS 'espeak' needs 'espeakng-loader' (pip install '.[offline]')"
            ) from exc
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        data = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise ProviderUnavailable("eSpeak NG failed to initialise")
        self.sample_rate = rate
        self._lib = lib
        self._samples: list[np.ndarray] = []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()

    @classmethod
    def get(cls) -> _Engine:
        with cls._create_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _on_audio(self, wav: ctypes.POINTER(ctypes.c_short), count: int, _events: int) -> int:  # type: ignore[valid-type]
        if count > 0 and wav:
            self._samples.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def speak(self, text: str, voice: str, rate: int, pitch: int) -> np.ndarray:
        with self.lock:
            self._samples = []
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ProviderError(f"eSpeak NG has no voice {voice!r}")
            self._lib.espeak_SetParameter(_RATE, rate, 0)
            self._lib.espeak_SetParameter(_PITCH, pitch, 0)
            data = text.encode("utf-8") + b"\x00"
            buffer = ctypes.create_string_buffer(data)
            error = self._lib.espeak_Synth(
                buffer, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            if error != 0:
                raise ProviderError(f"eSpeak NG synthesis failed (code {error})")
            samples, self._samples = self._samples, []
        if not samples:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(samples)


class EspeakTts(Tunable):
    """Provider options: ``voice`` (e.g. ``en-us``, ``en+f3``), ``rate`` (words/min), ``pitch``,
    all tuning: the eSpeak NG library is one per process anyway."""

    TUNING = ("voice", "rate", "pitch")

    def __init__(self, voice: str = "en-us", rate: int = 165, pitch: int = 50) -> None:
        self._engine = _Engine.get()
        self.voice, self.rate, self.pitch = voice, int(rate), int(pitch)
        self._worker = Worker("espeak")

    def synthesize_sync(self, text: str) -> bytes:
        samples = self._engine.speak(text, self.voice, self.rate, self.pitch)
        audio = samples.astype(np.float32) / 32768.0
        return float_to_pcm16(resample(audio, self._engine.sample_rate))

    async def synthesize(self, text: str) -> bytes:
        """16 kHz PCM16 mono audio for ``text``."""
        return await self._worker.run(self.synthesize_sync, text)

    def warm_up(self) -> None:
        self.synthesize_sync("ok")
