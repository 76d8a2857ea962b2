"""The call socket's vocabulary, defined once: close codes and message types, and the checks
every client message passes before the consumer acts on it. Statuses and end reasons (the
`call.ended` reasons) are in `calls.vocabulary`.

The widget lists its side once too (`static/widget/call.js`, `CLOSE_TEXT`);
tests/calls/test_protocol_vocabulary.py checks that the two agree. README.md ("The call
socket protocol") describes the same vocabulary for client authors.
"""

from __future__ import annotations

import json
import math
from enum import IntEnum, StrEnum
from typing import Any

import numpy as np


class CloseCode(IntEnum):
    """Every close code the server sends on the call socket.

    Application codes are in 4000-4999: daphne's WebSocket layer (autobahn) refuses any code
    other than 1000 and 3000-4999 from an application, so 1008/1009/1011 could never be sent.
    """

    NORMAL = 1000  # the call ended normally (after call.ended)
    BAD_REQUEST = 4400  # missing or malformed query parameters
    BAD_TOKEN = 4401  # bad or expired token
    ORIGIN_NOT_ALLOWED = 4403
    UNKNOWN_CALL = 4404
    NO_HELLO = 4408  # no hello in time
    ALREADY_CONNECTED = 4409  # the call is connected elsewhere, or has ended
    TOO_BIG = 4413  # a message over the size limits
    FLOODING = 4429  # more messages a second than allowed
    SERVER_ERROR = 4500  # the server failed; the call ended failed/error
    BUSY = 4503  # this server carries MAX_CONCURRENT_CALLS already: try again in a moment

    # The live transcript socket (`/ws/calls/{id}`) reuses the codes above (aliases):
    BAD_CREDENTIALS = 4401  # no, an unknown or revoked key, or a bad/used/expired session token
    MISSING_SCOPE = 4403  # the key lacks calls:read


class ClientMessage(StrEnum):
    """`type` of the JSON messages a client sends."""

    HELLO = "hello"
    WEBRTC_OFFER = "webrtc.offer"
    PLAYBACK = "playback"
    MUTE = "mute"
    END = "end"
    PING = "ping"
    TEXT = "text"  # a line the visitor typed: a user turn


class ServerMessage(StrEnum):
    """`type` of the JSON messages the server sends."""

    WEBRTC_CONFIG = "webrtc.config"
    WEBRTC_ANSWER = "webrtc.answer"
    CALL_STARTED = "call.started"
    STATE = "state"
    USER_SPEECH_STARTED = "user.speech.started"
    USER_SPEECH_STOPPED = "user.speech.stopped"
    TRANSCRIPT = "transcript"
    ASSISTANT_SPEECH_STARTED = "assistant.speech.started"
    ASSISTANT_SPEECH_STOPPED = "assistant.speech.stopped"
    INTERRUPTION = "interruption"
    TURN_TIMINGS = "turn.timings"
    ERROR = "error"
    CALL_ENDED = "call.ended"
    PONG = "pong"


class LiveMessage(StrEnum):
    """`type` of the messages of the live transcript socket (`/ws/calls/{id}`, read-only:
    the client sends only `ping`)."""

    CONNECTED = "connected"
    TRANSCRIPT_UPDATE = "transcript_update"
    CALL_STATUS_UPDATE = "call_status_update"
    ERROR = "error"
    PONG = "pong"


class AudioPath(StrEnum):
    """How the call's audio travels (`hello.audio`, `call.started.audio`, Call.transport)."""

    WEBSOCKET = "websocket"
    WEBRTC = "webrtc"


class CallState(StrEnum):
    """`state.state`: what the assistant is doing."""

    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"


class ErrorStage(StrEnum):
    """`error.stage` for errors the socket itself reports (the engine adds its own stages)."""

    CONNECT = "connect"
    PROTOCOL = "protocol"
    WEBRTC = "webrtc"
    SERVER = "server"


# --- Limits and the checks on client messages ---

MAX_BINARY_BYTES = 3200  # 100 ms of 16 kHz PCM16
MAX_TEXT_BYTES = 64 * 1024  # UTF-8 bytes, as on the wire
MAX_JSON_DEPTH = 32
MAX_PLAYED_MS = 24 * 3600 * 1000  # a day: longer than any call may last
MAX_TYPED_CHARS = 1000  # `text.text`, after stripping


class ProtocolError(ValueError):
    """A client message the server refuses; the message says why (sent to the client)."""


def text_too_big(text: str, limit: int = MAX_TEXT_BYTES) -> bool:
    """Whether `text` is over `limit` bytes in UTF-8 (what the client sent, not characters)."""
    if len(text) * 4 <= limit:  # at most 4 bytes a character: most messages stop here
        return False
    if len(text) > limit:
        return True
    return len(text.encode("utf-8", "surrogatepass")) > limit


_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_OPEN_ARRAY, _OPEN_OBJECT, _CLOSE_ARRAY, _CLOSE_OBJECT = (ord(c) for c in "[{]}")


def json_too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text nests arrays/objects deeper than `limit`, without parsing it.

    Linear and without recursion (numpy over the UTF-8 bytes, about a millisecond for 64 KiB),
    so it also refuses what would make the parser recurse: brackets inside strings do not
    count, escaped quotes do not end a string. Malformed text may be misjudged; the parser
    refuses it anyway."""
    if text.count("[") + text.count("{") <= limit:  # C speed; every well-behaved message
        return False
    raw = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    step = ((raw == _OPEN_ARRAY) | (raw == _OPEN_OBJECT)).view(np.int8) - (
        (raw == _CLOSE_ARRAY) | (raw == _CLOSE_OBJECT)
    ).view(np.int8)
    if '"' in text:
        quotes = raw == _QUOTE
        if "\\" in text:
            # A quote is escaped when an odd run of backslashes comes right before it.
            index = np.arange(raw.size, dtype=np.int32)
            last_other = np.maximum.accumulate(np.where(raw != _BACKSLASH, index, -1))
            run_before = np.zeros(raw.size, dtype=np.int32)
            run_before[1:] = index[:-1] - last_other[:-1]
            quotes &= run_before % 2 == 0
        in_string = np.logical_xor.accumulate(quotes)
        step[in_string] = 0
    return bool(np.cumsum(step, dtype=np.int32).max(initial=0) > limit)


def decode_client_message(text: str) -> tuple[ClientMessage, dict[str, Any]]:
    """The message's type and body, or ProtocolError saying what is wrong with it."""
    if json_too_deep(text):
        raise ProtocolError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
    try:
        message = json.loads(text)
    except RecursionError as exc:  # the depth check should have caught it first
        raise ProtocolError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.") from exc
    except ValueError as exc:  # includes integers longer than Python converts
        raise ProtocolError("Expected a JSON object with a type.") from exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("Expected a JSON object with a type.")
    try:
        kind = ClientMessage(message["type"])
    except ValueError as exc:
        raise ProtocolError("Unknown message type.") from exc
    return kind, message


def played_ms_of(message: dict[str, Any]) -> int:
    """`playback.played_ms` as whole milliseconds, or ProtocolError.

    JSON allows 1e400 (infinity to Python) and booleans are ints to Python: neither is a
    duration."""
    value = message.get("played_ms")
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not math.isfinite(value))
        or not 0 <= value <= MAX_PLAYED_MS
    ):
        raise ProtocolError(
            f"played_ms must be a number of milliseconds from 0 to {MAX_PLAYED_MS}."
        )
    return int(value)


def typed_text_of(message: dict[str, Any]) -> str:
    """`text.text` stripped: 1 to MAX_TYPED_CHARS characters, or ProtocolError."""
    value = message.get("text")
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > MAX_TYPED_CHARS:
        raise ProtocolError(f"text must be a string of 1 to {MAX_TYPED_CHARS} characters.")
    return text


def text_only_of(message: dict[str, Any]) -> bool:
    """`hello.text_only`: the visitor has no microphone and types (only `true` asks it)."""
    return message.get("text_only") is True
