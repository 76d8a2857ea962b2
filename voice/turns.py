"""Turn taking as a pure state machine over VAD decisions (no I/O, no clock).

Positions are sample indices of the user's audio stream (16 kHz), so decisions are
deterministic for a given audio stream, whatever the wall clock does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from voice import SAMPLE_RATE


class TurnEventKind(StrEnum):
    START = "start"  # speech lasted speech_start_ms: a user utterance began
    SUSTAINED = "sustained"  # speech lasted min_interruption_ms: long enough to barge in
    PAUSE = "pause"  # short silence inside an utterance: transcribe speculatively
    RESUME = "resume"  # speech again after a PAUSE: drop the speculative transcript
    ENDPOINT = "endpoint"  # the utterance is over


@dataclass(frozen=True)
class TurnEvent:
    kind: TurnEventKind
    #: First sample of the utterance (its speech onset).
    start: int
    #: Sample where the last speech window ended (for PAUSE / ENDPOINT), else the current one.
    end: int
    #: True when ENDPOINT was forced by the maximum utterance length.
    forced: bool = False


def _samples(ms: float) -> int:
    return int(SAMPLE_RATE * ms / 1000)


class TurnDetector:
    """Feeds on one VAD probability per window, emits :class:`TurnEvent` s."""

    def __init__(
        self,
        *,
        threshold: float = 0.5,
        speech_start_ms: int = 100,
        min_interruption_ms: int = 150,
        prefetch_silence_ms: int = 160,
        endpoint_silence_ms: int = 500,
        max_utterance_ms: int = 30_000,
    ) -> None:
        self.threshold = threshold
        self.neg_threshold = max(0.0, threshold - 0.15)
        self.start_samples = _samples(speech_start_ms)
        self.sustain_samples = _samples(min_interruption_ms)
        self.prefetch_samples = _samples(prefetch_silence_ms) if prefetch_silence_ms else 0
        self.endpoint_samples = _samples(endpoint_silence_ms)
        self.max_samples = _samples(max_utterance_ms)
        self.in_utterance = False
        self._onset: int | None = None  # start of the current run of speech
        self._speech_end = 0  # end of the last speech window
        self._utt_start = 0
        self._sustained = False
        self._paused = False

    @property
    def utterance_start(self) -> int | None:
        """First sample of the utterance in progress (None outside one)."""
        return self._utt_start if self.in_utterance else None

    @property
    def onset(self) -> int | None:
        """Start of the current run of speech, even before it counts as an utterance."""
        return self._onset

    def reset(self) -> None:
        """Forget the current utterance (e.g. after a forced endpoint)."""
        self.in_utterance = False
        self._onset = None
        self._sustained = False
        self._paused = False

    def process(self, prob: float, end: int, size: int) -> list[TurnEvent]:
        """Take the VAD probability of the window ``[end - size, end)``."""
        start = end - size
        events: list[TurnEvent] = []
        in_speech = self._onset is not None or self.in_utterance
        is_speech = prob >= (self.neg_threshold if in_speech else self.threshold)
        if is_speech:
            if self._onset is None:
                self._onset = start
                self._sustained = False
            self._speech_end = end
            run = end - self._onset
            if self.in_utterance and self._paused:
                self._paused = False
                events.append(TurnEvent(TurnEventKind.RESUME, self._utt_start, end))
            if not self.in_utterance and run >= self.start_samples:
                self.in_utterance = True
                self._utt_start = self._onset
                events.append(TurnEvent(TurnEventKind.START, self._onset, end))
            if self.in_utterance and not self._sustained and run >= self.sustain_samples:
                self._sustained = True
                events.append(TurnEvent(TurnEventKind.SUSTAINED, self._onset, end))
            if self.in_utterance and end - self._utt_start >= self.max_samples:
                events.append(TurnEvent(TurnEventKind.ENDPOINT, self._utt_start, end, forced=True))
                self.reset()
            return events

        silence = end - self._speech_end
        if not self.in_utterance:
            # A blip shorter than speech_start_ms: forget it once silence is longer than it.
            if self._onset is not None and silence >= self.start_samples:
                self._onset = None
            return events
        if silence > 0:
            self._onset = None  # the next speech is a new run (for barge-in duration)
        if self.prefetch_samples and not self._paused and silence >= self.prefetch_samples:
            if silence < self.endpoint_samples:
                self._paused = True
                events.append(TurnEvent(TurnEventKind.PAUSE, self._utt_start, self._speech_end))
        if silence >= self.endpoint_samples:
            events.append(TurnEvent(TurnEventKind.ENDPOINT, self._utt_start, self._speech_end))
            self.reset()
        return events
