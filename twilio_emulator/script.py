"""What the emulated far end says: utterances, pauses, DTMF, waits for the reply, hang-up.

The media side sends one 20 ms frame of inbound audio every 20 ms for the whole stream, as
Twilio does; the script only decides what is in those frames (speech or silence) and when to
send DTMF or hang up. Without a ``Hangup()`` the caller stays on the line in silence until the
server ends the call (or ``Scenario.max_call_seconds`` passes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from twilio_emulator.audio import FRAME_SAMPLES, load_wav, to_8k

SPEECH_RMS = 300  # int16 RMS above which a 20 ms frame counts as speech (about -40 dBFS)


@dataclass
class Speak:
    """An utterance: a WAV path, or PCM (int16 array / PCM16 LE bytes) at ``rate``."""

    audio: str | Path | bytes | np.ndarray
    rate: int = 8000
    label: str = ""

    def frames(self) -> list[np.ndarray]:
        if isinstance(self.audio, str | Path):
            samples, rate = load_wav(self.audio)
        elif isinstance(self.audio, bytes | bytearray):
            samples, rate = np.frombuffer(bytes(self.audio), dtype="<i2"), self.rate
        else:
            samples, rate = np.asarray(self.audio), self.rate
        pcm = to_8k(samples, rate)
        pad = (-len(pcm)) % FRAME_SAMPLES
        pcm = np.concatenate([pcm, np.zeros(pad, dtype=np.int16)])
        return list(pcm.reshape(-1, FRAME_SAMPLES))


@dataclass
class Silence:
    seconds: float


@dataclass
class Dtmf:
    digit: str


@dataclass
class WaitForReply:
    """Silence until the server's reply has been heard: some media arrived after the last
    utterance and the playout queue has stayed empty for ``settle`` seconds (or ``timeout``)."""

    timeout: float = 15.0
    settle: float = 0.4


@dataclass
class Hangup:
    pass


ScriptItem = Speak | Silence | Dtmf | WaitForReply | Hangup


@dataclass
class CallerScript:
    items: list[ScriptItem] = field(default_factory=list)


def last_speech_frame(frames: list[np.ndarray]) -> int:
    """Index of the last frame louder than SPEECH_RMS (the end of speech, trailing silence
    excluded); the last frame when none is that loud."""
    for index in range(len(frames) - 1, -1, -1):
        if np.sqrt(np.mean(frames[index].astype(np.float64) ** 2)) >= SPEECH_RMS:
            return index
    return len(frames) - 1
