"""Events a session produces: small frozen dataclasses with a JSON-friendly ``to_dict()``.

``type`` is the message type a transport can put on the wire; ``to_dict()`` never includes
audio bytes.  Times named ``*_ms`` without further note are milliseconds of call time, that is,
of user audio received since the call started.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

#: Reasons a call ends with.
END_REASONS = (
    "hangup",
    "assistant_ended",
    "max_duration",
    "silence_timeout",
    "error",
    "client_gone",
)


@dataclass(frozen=True)
class Event:
    """Base class of all session events."""

    type: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-serialisable dict (``{"type": ..., **fields}``), audio left out."""
        data: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bytes | bytearray):
                data[f"{f.name}_bytes"] = len(value)
            else:
                data[f.name] = value
        return data


@dataclass(frozen=True)
class CallStarted(Event):
    type: ClassVar[str] = "call_started"


@dataclass(frozen=True)
class UserSpeechStarted(Event):
    type: ClassVar[str] = "user_speech_started"
    start_ms: int = 0


@dataclass(frozen=True)
class UserSpeechStopped(Event):
    """The endpoint: the user's turn is over."""

    type: ClassVar[str] = "user_speech_stopped"
    start_ms: int = 0
    end_ms: int = 0


@dataclass(frozen=True)
class Transcript(Event):
    """What was said. Assistant lines: partial per spoken sentence, final when it stops
    (cut to what the listener heard if interrupted)."""

    type: ClassVar[str] = "transcript"
    role: str = "user"
    text: str = ""
    final: bool = True
    start_ms: int = 0
    end_ms: int = 0
    #: An assistant line cut short by the user (``text`` is what was heard).
    interrupted: bool = False
    #: A user line the user typed (``Session.push_text``), not spoke.
    typed: bool = False
    #: Assistant lines: where the reply came from, as the reply engine tells (the knowledge
    #: engine: ``{"kind": "answer"|"clarify"|"decline"|"goodbye", "entry", "question",
    #: "score", "runner_up", "runner_up_score", "candidates"}``); None when it does not say.
    source: dict[str, Any] | None = None


@dataclass(frozen=True)
class AssistantSpeechStarted(Event):
    type: ClassVar[str] = "assistant_speech_started"
    turn: int = 0
    text: str = ""


@dataclass(frozen=True)
class AssistantSpeechStopped(Event):
    type: ClassVar[str] = "assistant_speech_stopped"
    turn: int = 0
    interrupted: bool = False


@dataclass(frozen=True)
class AudioOut(Event):
    """One 20 ms frame of assistant audio, 16 kHz PCM16 LE mono (640 bytes)."""

    type: ClassVar[str] = "audio_out"
    pcm: bytes = b""
    turn: int = 0


@dataclass(frozen=True)
class Interruption(Event):
    """The user talked over the assistant: flush buffered playback now."""

    type: ClassVar[str] = "interruption"
    turn: int = 0
    heard_text: str = ""
    played_ms: int = 0
    #: User speech onset (in call time) -> assistant audio stopped, wall-clock ms.
    stop_ms: int = 0


@dataclass(frozen=True)
class TurnTimings(Event):
    """Per-turn latencies in wall-clock ms, each measured from the end of the user's speech
    (``None`` where the stage did not happen)."""

    type: ClassVar[str] = "turn_timings"
    turn: int = 0
    speech_end_ms: int = 0
    endpoint_silence_ms: int = 0
    endpoint_ms: int | None = None
    transcript_ms: int | None = None
    first_text_ms: int | None = None
    first_audio_ms: int | None = None
    interruption_stop_ms: int | None = None


@dataclass(frozen=True)
class CallEnded(Event):
    type: ClassVar[str] = "call_ended"
    reason: str = "hangup"


@dataclass(frozen=True)
class Error(Event):
    """A provider or stage failed; ``message`` never contains credentials."""

    type: ClassVar[str] = "error"
    stage: str = ""
    message: str = ""
