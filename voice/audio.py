"""Audio helpers: PCM conversion, resampling (soxr), mu-law, framing."""

from __future__ import annotations

import numpy as np

from voice import FRAME_BYTES, SAMPLE_RATE


def pcm16_to_float(pcm: bytes) -> np.ndarray:
    """PCM16 LE bytes -> float32 array in [-1, 1)."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """Float array in [-1, 1] -> PCM16 LE bytes (clipped)."""
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def resample(samples: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample a whole float32 mono signal with soxr (high quality)."""
    if from_rate == to_rate or samples.size == 0:
        return np.asarray(samples, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(samples, dtype=np.float32), from_rate, to_rate, quality="HQ")


def resample_pcm16(pcm: bytes, from_rate: int, to_rate: int = SAMPLE_RATE) -> bytes:
    """Resample PCM16 LE mono bytes."""
    if from_rate == to_rate:
        return bytes(pcm)
    return float_to_pcm16(resample(pcm16_to_float(pcm), from_rate, to_rate))


class StreamResampler:
    """Chunk-by-chunk resampling for live streams (e.g. 48 kHz browser or 8 kHz phone audio).

    soxr's filtered qualities hand out audio in blocks of about 100 ms whatever the chunk
    size: fine for files, a tenth of a second of added delay on a live call. ``low_latency``
    gives every chunk's samples back at once: soxr's quick (cubic) mode with a short FIR
    low-pass (31 taps: under 1 ms) before it going down, after it going up."""

    def __init__(self, from_rate: int, to_rate: int = SAMPLE_RATE, *, low_latency: bool = False):
        import soxr

        self.from_rate, self.to_rate = from_rate, to_rate
        quality = "QQ" if low_latency else "HQ"
        self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality=quality)
        # Going down, nothing above the new Nyquist may fold back in; going up, the images
        # cubic interpolation leaves above the old Nyquist are removed.
        low = min(from_rate, to_rate) * 0.45
        self._before = (
            StreamLowPass(low / from_rate) if low_latency and to_rate < from_rate else None
        )
        self._after = StreamLowPass(low / to_rate) if low_latency and to_rate > from_rate else None

    def process(self, pcm: bytes, last: bool = False) -> bytes:
        """Feed PCM16 LE bytes, get the resampled bytes available so far."""
        data = np.frombuffer(pcm, dtype="<i2")
        if self._before is not None:
            data = self._before.process(data)
        out = self._stream.resample_chunk(data, last=last).astype("<i2")
        if self._after is not None:
            out = self._after.process(out)
        return out.tobytes()


class StreamLowPass:
    """A windowed-sinc FIR low-pass over a stream of int16 chunks (state kept between them).

    ``cutoff`` is a fraction of the sample rate (0.5 = Nyquist); 31 taps delay 15 samples."""

    def __init__(self, cutoff: float, taps: int = 31) -> None:
        n = np.arange(taps) - (taps - 1) / 2
        kernel = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(taps)
        self._kernel = kernel / kernel.sum()
        self._tail = np.zeros(taps - 1)

    def process(self, samples: np.ndarray) -> np.ndarray:
        x = np.concatenate([self._tail, samples.astype(np.float64)])
        self._tail = x[len(x) - len(self._tail) :]
        y = np.convolve(x, self._kernel, mode="valid")
        return np.clip(np.rint(y), -32768, 32767).astype("<i2")


def _mulaw_encode_table() -> np.ndarray:
    # G.711 mu-law, bit-exact with the former stdlib audioop (gone in Python 3.13).
    sample = np.arange(65536, dtype=np.int32)
    sample = np.where(sample >= 32768, sample - 65536, sample) >> 2
    mask = np.where(sample < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(sample), 8159) + 0x21
    seg_end = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    seg = np.searchsorted(seg_end, magnitude, side="left")
    value = (np.minimum(seg, 7) << 4) | ((magnitude >> (np.minimum(seg, 7) + 1)) & 0xF)
    value = np.where(seg >= 8, 0x7F, value)
    return ((value ^ mask) & 0xFF).astype(np.uint8)


def _mulaw_decode_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


_MULAW_ENCODE = _mulaw_encode_table()
_MULAW_DECODE = _mulaw_decode_table()


def pcm16_to_mulaw(pcm: bytes) -> bytes:
    """PCM16 LE -> G.711 mu-law bytes (same sample rate)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int32) & 0xFFFF
    return _MULAW_ENCODE[samples].tobytes()


def mulaw_to_pcm16(data: bytes) -> bytes:
    """G.711 mu-law bytes -> PCM16 LE (same sample rate)."""
    return _MULAW_DECODE[np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


def split_frames(pcm: bytes, frame_bytes: int = FRAME_BYTES) -> list[bytes]:
    """Cut PCM into fixed frames, zero-padding the last one."""
    frames = [pcm[i : i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]
    if frames and len(frames[-1]) < frame_bytes:
        frames[-1] = frames[-1] + b"\x00" * (frame_bytes - len(frames[-1]))
    return frames


def ms_to_bytes(ms: float, rate: int = SAMPLE_RATE) -> int:
    """Byte length of ``ms`` of PCM16 mono audio (whole samples)."""
    return int(rate * ms / 1000) * 2


def bytes_to_ms(n: int, rate: int = SAMPLE_RATE) -> int:
    """Duration in ms of ``n`` bytes of PCM16 mono audio."""
    return int(n // 2 * 1000 // rate)
