"""Phone audio for the emulator: WAV loading, resampling to 8 kHz (soxr), G.711 mu-law (numpy).

Mu-law follows the classic Sun g711.c reference (the algorithm the former stdlib ``audioop``
used), so it is bit-exact with what Twilio's documentation calls ``audio/x-mulaw``.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

RATE = 8000  # Media Streams audio: 8 kHz mono mu-law
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
MULAW_SILENCE = 0xFF  # mu-law code of a zero sample


def _encode_table() -> np.ndarray:
    index = np.arange(65536, dtype=np.int32)
    pcm = np.where(index >= 32768, index - 65536, index) >> 2  # 14-bit magnitude, as g711.c
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(pcm), 8159) + 0x21  # clip, then add the bias (33)
    segment_ends = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    segment = np.searchsorted(segment_ends, magnitude, side="left")
    shift = np.minimum(segment, 7) + 1
    code = (np.minimum(segment, 7) << 4) | ((magnitude >> shift) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return ((code ^ mask) & 0xFF).astype(np.uint8)


def _decode_table() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    value = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    return np.where(code & 0x80, 0x84 - value, value - 0x84).astype(np.int16)


_ENCODE = _encode_table()
_DECODE = _decode_table()


def mulaw_encode(samples: np.ndarray | bytes) -> bytes:
    """PCM16 (array or little-endian bytes) -> mu-law bytes, one byte per sample."""
    if isinstance(samples, bytes | bytearray | memoryview):
        samples = np.frombuffer(samples, dtype="<i2")
    return _ENCODE[np.asarray(samples, dtype=np.int16).astype(np.int32) & 0xFFFF].tobytes()


def mulaw_decode(data: bytes) -> np.ndarray:
    """Mu-law bytes -> int16 PCM samples."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def to_8k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Mono int16 (or float in [-1, 1]) at ``rate`` -> int16 at 8 kHz, resampled with soxr."""
    samples = np.asarray(samples)
    if samples.dtype.kind == "f":
        floats = samples.astype(np.float32)
    else:
        floats = samples.astype(np.float32) / 32768.0
    if rate != RATE and floats.size:
        import soxr

        floats = soxr.resample(floats, rate, RATE, quality="HQ")
    return (np.clip(floats, -1.0, 1.0) * 32767.0).astype(np.int16)


def load_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM WAV; stereo is mixed down. Returns (int16 samples, sample rate)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported")
        rate, channels = wav.getframerate(), wav.getnchannels()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples.astype(np.int16), rate


def save_wav(path: str | Path, pcm: bytes, rate: int = RATE) -> None:
    """Write mono PCM16 little-endian bytes as a WAV file."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm)
