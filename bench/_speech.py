"""Test speech synthesised with the espeak-ng command (Debian package), at 16 kHz."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

VOICES = {
    "en-us": ["-v", "en-us", "-s", "160"],
    "en-f3": ["-v", "en+f3", "-s", "190", "-p", "60"],
    # Slower: survives a browser's noise suppression on the fake microphone better.
    "en-us-slow": ["-v", "en-us", "-s", "140"],
}


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def synthesize(text: str, voice: str = "en-us", folder: str | None = None) -> bytes:
    """16 kHz PCM16 mono of ``text`` spoken by espeak-ng (resampled with soxr)."""
    import soxr

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", *VOICES[voice], "-w", str(path), text], check=True)
        with wave.open(str(path)) as w:
            rate = w.getframerate()
            samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    audio = soxr.resample(samples.astype(np.float32) / 32768.0, rate, 16000)
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def silence(ms: int) -> bytes:
    return b"\x00\x00" * (16 * ms)
