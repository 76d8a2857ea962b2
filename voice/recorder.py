"""Two-channel call recording: user on the left, assistant on the right, time-aligned.

The user's audio is the time base (it arrives in real time).  Assistant audio is queued when
it is sent and mixed in as the user's audio advances, which is when the listener plays it;
on an interruption the queued, never-played part is dropped.
"""

from __future__ import annotations

import wave

import numpy as np

from voice import SAMPLE_RATE


class StereoRecorder:
    """Streams a 16 kHz 16-bit stereo WAV file; nothing is held in memory but the few
    hundred ms of assistant audio that are ahead of the listener."""

    def __init__(self, path: str, rate: int = SAMPLE_RATE) -> None:
        self._file = wave.open(path, "wb")  # noqa: SIM115 - closed in close()
        self._file.setnchannels(2)
        self._file.setsampwidth(2)
        self._file.setframerate(rate)
        self._assistant = bytearray()
        self.closed = False

    def write_user(self, pcm: bytes) -> None:
        """Add user audio; the assistant channel advances by the same length."""
        if self.closed or not pcm:
            return
        n = len(pcm)
        other = bytes(self._assistant[:n])
        del self._assistant[:n]
        if len(other) < n:
            other += b"\x00" * (n - len(other))
        self._write(pcm, other)

    def add_assistant(self, pcm: bytes) -> None:
        """Queue assistant audio, played from the listener's current position on."""
        if not self.closed:
            self._assistant.extend(pcm)

    def drop_assistant(self) -> None:
        """Forget assistant audio the listener will not hear (after an interruption)."""
        self._assistant.clear()

    def _write(self, left: bytes, right: bytes) -> None:
        stereo = np.empty(len(left), dtype="<i2")
        stereo[0::2] = np.frombuffer(left, dtype="<i2")
        stereo[1::2] = np.frombuffer(right, dtype="<i2")
        self._file.writeframesraw(stereo.tobytes())

    def close(self) -> None:
        """Write the rest of the assistant's audio and close the file (idempotent)."""
        if self.closed:
            return
        if self._assistant:
            rest = bytes(self._assistant)
            self._write(b"\x00" * len(rest), rest)
            self._assistant.clear()
        self._file.close()
        self.closed = True
