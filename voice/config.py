"""Session configuration: plain data, no behaviour, no environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

#: What the assistant says before it ends a call (the caller said goodbye, or an API end).
DEFAULT_GOODBYE_MESSAGE = "Thank you for calling. Goodbye!"


@dataclass(frozen=True)
class ProviderSpec:
    """Which provider to use for a capability, by registry name, and its options.

    Options are declared per provider in :mod:`voice.providers.options`: identity and
    operator options build the (shared) provider, tuning options apply per call.  They may
    carry credentials (``api_key``, from the operator's endpoint); those are never logged
    nor put in events.
    """

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never show option values: they may hold credentials
        return f"ProviderSpec(name={self.name!r}, options=<{len(self.options)} keys>)"


def _spec(name: str) -> Any:
    return field(default_factory=lambda: ProviderSpec(name))


#: What a DTMF rule does: speak its line, or speak its line (or the goodbye line) and hang up.
DTMF_ACTIONS = ("say", "end_call")
DTMF_DIGITS = "0123456789*#ABCD"


class KnowledgeEntry(NamedTuple):
    """One entry of the ``knowledge`` brain; a plain ``(question, answer)`` or
    ``(question, answer, alternatives)`` tuple works as well."""

    question: str
    answer: str
    #: Other ways a caller may ask the question.
    alternatives: tuple[str, ...] = ()


@dataclass
class SessionConfig:
    """Everything one call needs. ``SessionConfig()`` runs the offline stack.

    Times are milliseconds (``*_ms``) or seconds (``*_seconds``).
    """

    system_prompt: str = "You are a helpful voice assistant. Answer briefly."
    first_message: str = "Hello! How can I help you today?"
    language: str = "en"
    variables: dict[str, str] = field(default_factory=dict)

    vad: ProviderSpec = _spec("silero")
    stt: ProviderSpec = _spec("faster-whisper")
    brain: ProviderSpec = _spec("knowledge")
    tts: ProviderSpec = _spec("piper")

    #: Entries of the ``knowledge`` brain: :class:`KnowledgeEntry` or plain
    #: ``(question, answer[, alternatives])`` tuples.
    knowledge: list[tuple[Any, ...]] = field(default_factory=list)
    fallback_message: str = "Sorry, I don't know that. Could you ask another way?"
    goodbye_message: str = DEFAULT_GOODBYE_MESSAGE
    #: Keys a phone caller may press: digit -> (action, text); actions in DTMF_ACTIONS.
    dtmf_rules: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: Said when a provider fails during a turn (after an Error event).
    error_message: str = "Sorry, something went wrong. Please try again."

    # Turn taking.
    vad_threshold: float = 0.5
    speech_start_ms: int = 100
    endpoint_silence_ms: int = 500
    #: At this much silence the transcript is started speculatively (kept if the endpoint
    #: confirms, dropped if the user goes on). 0 disables it.
    prefetch_silence_ms: int = 160
    min_interruption_ms: int = 150
    #: Audio kept before the detected speech start, so STT hears the first syllable.
    pre_speech_pad_ms: int = 300
    interruptions_enabled: bool = True

    # Limits.
    max_call_seconds: float = 600.0
    silence_timeout_seconds: float = 20.0
    silence_prompt: str = "Are you still there?"
    max_utterance_seconds: float = 30.0

    # Provider time-outs (seconds).
    stt_timeout_seconds: float = 15.0
    brain_timeout_seconds: float = 20.0
    tts_timeout_seconds: float = 15.0

    # Audio out.
    #: Pace AudioOut in real time, at most ``playout_lead_ms`` ahead of the listener.
    pace_audio: bool = True
    playout_lead_ms: int = 200

    recording_path: str | None = None
