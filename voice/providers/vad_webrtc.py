"""WebRTC VAD (``webrtcvad-wheels``): a few microseconds per frame, yes/no only.

Modes 0-2 fire on background noise; mode 3 is the default.
"""

from __future__ import annotations

from voice.providers.base import ProviderUnavailable, Tunable, VadCallback

FRAME = 320  # samples: 20 ms at 16 kHz


class WebrtcStream:
    def __init__(self, vad: object, on_result: VadCallback) -> None:
        self._vad = vad
        self._on_result = on_result
        self._buffer = b""
        self.position = 0
        self.closed = False

    def push(self, pcm: bytes) -> None:
        if self.closed:
            return
        self._buffer += pcm
        while len(self._buffer) >= FRAME * 2:
            frame, self._buffer = self._buffer[: FRAME * 2], self._buffer[FRAME * 2 :]
            self.position += FRAME
            speech = self._vad.is_speech(frame, 16000)  # type: ignore[attr-defined]
            self._on_result(1.0 if speech else 0.0, self.position, FRAME)

    def close(self) -> None:
        self.closed = True


class WebrtcVad(Tunable):
    """Provider: one ``webrtcvad.Vad`` per call (it is tiny); ``mode`` is tuning."""

    TUNING = ("mode",)

    def __init__(self, mode: int = 3) -> None:
        try:
            import webrtcvad
        except ImportError as exc:  # pragma: no cover
            raise ProviderUnavailable(
                "WebRTC VAD needs 'webrtcvad-wheels' (pip install '.[offline]')"
            ) from exc
        self._module = webrtcvad
        self.mode = int(mode)

    def open_stream(self, on_result: VadCallback) -> WebrtcStream:
        return WebrtcStream(self._module.Vad(self.mode), on_result)
