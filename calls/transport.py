"""The transport seam: how one call's audio and events reach the far end and come back.

`calls.runtime.CallRuntime` runs the voice session and persists it; it knows no wire. It hands
every outbound thing to a `CallTransport`:

- ``send_message(message)``: a protocol message (`calls.protocol.ServerMessage`); a transport
  with no such channel (the phone) drops what it has no use for;
- ``send_audio(pcm)``: the assistant's audio, 16 kHz mono PCM16 in 20 ms frames; the transport
  converts it to its own format and rate;
- ``utterance_started()`` / ``interrupted()``: playback accounting, and on an interruption the
  transport drops what it still holds (the WebRTC track's queue, Twilio's buffer);
- ``close(code)``: the call has ended (after ``call.ended``): tear the wire down.

What comes back goes to the runtime it is attached to: ``push_audio`` (16 kHz PCM16),
``report_heard(ms)`` (how much of the current utterance the listener has heard: each transport
knows that its own way), ``push_digit`` (DTMF) and ``stop(reason)``.

Three implementations: the browser's WebSocket (`WebSocketTransport`), WebRTC
(`WebRTCTransport`, control messages still on the socket) and Twilio Media Streams
(`telephony.media.TwilioStreamTransport`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from calls.protocol import AudioPath

if TYPE_CHECKING:
    from calls.runtime import CallRuntime
    from calls.webrtc import CallPeer

FRAME_MS = 20
#: bytes of one 20 ms frame of the engine's audio (16 kHz, 16-bit, mono)
ENGINE_FRAME_BYTES = 640
PEER_REPORT_SECONDS = 0.1

SendJson = Callable[[dict[str, Any]], Awaitable[None]]
SendBytes = Callable[[bytes], Awaitable[None]]
Close = Callable[[int], Awaitable[None]]


def engine_ms(pcm: bytes) -> int:
    """Milliseconds of engine audio (16 kHz PCM16) in ``pcm``."""
    return FRAME_MS * len(pcm) // ENGINE_FRAME_BYTES


class PlaybackTracker:
    """Turns the far end's "total ms played" into "ms heard of the current utterance".

    Samples play in the order sent, except those flushed at an interruption: everything sent
    before the interruption and not played by the flush is dropped.
    """

    def __init__(self) -> None:
        self.sent_ms = 0
        self.dropped_ms = 0
        self.utterance_start_ms = 0
        self.flush_pending_at: int | None = None

    def sent(self, ms: int) -> None:
        self.sent_ms += ms

    def utterance_started(self) -> None:
        self.utterance_start_ms = self.sent_ms

    def interrupted(self) -> None:
        self.flush_pending_at = self.sent_ms

    def heard(self, played_total_ms: int) -> int:
        if self.flush_pending_at is not None:
            # The first report after the flush fixes how much of what was sent was dropped.
            self.dropped_ms += max(0, self.flush_pending_at - self.dropped_ms - played_total_ms)
            self.flush_pending_at = None
        played_position = played_total_ms + self.dropped_ms
        return max(0, min(played_position, self.sent_ms) - self.utterance_start_ms)


class CallTransport:
    """The far end of one call, as the runtime sees it (see the module's docstring)."""

    #: stored as Call.transport and sent as call.started's ``audio``
    name: str = ""
    #: the audio rate the far end declares (call.started's ``sample_rate``)
    sample_rate: int = 16000

    def __init__(self) -> None:
        self.runtime: CallRuntime | None = None

    def attach(self, runtime: CallRuntime) -> None:
        """Called by the runtime it serves, before anything is sent."""
        self.runtime = runtime

    async def send_message(self, message: dict[str, Any]) -> None:
        """A protocol message; transports without a message channel drop it."""

    async def send_audio(self, pcm: bytes) -> None:
        raise NotImplementedError

    def utterance_started(self) -> None:
        """The assistant starts a new utterance: heard time counts from here."""

    def interrupted(self) -> None:
        """The caller interrupted: drop whatever the transport still holds to play."""

    async def close(self, code: int) -> None:
        raise NotImplementedError

    # --- far end -> runtime ---

    def played(self, played_total_ms: int) -> None:
        """The far end reports the total it has played (only some far ends do)."""

    def heard(self, ms: int) -> None:
        if self.runtime is not None:
            self.runtime.report_heard(ms)


class PlayedTotalTransport(CallTransport):
    """A far end that counts the total milliseconds it has played (the browser's playback
    reports, the WebRTC track's clock): `PlaybackTracker` turns that into heard time."""

    def __init__(self) -> None:
        super().__init__()
        self.playback = PlaybackTracker()

    async def send_audio(self, pcm: bytes) -> None:
        self.playback.sent(engine_ms(pcm))
        await self.write_audio(pcm)

    async def write_audio(self, pcm: bytes) -> None:
        raise NotImplementedError

    def utterance_started(self) -> None:
        self.playback.utterance_started()

    def interrupted(self) -> None:
        self.playback.interrupted()
        self.flush()

    def flush(self) -> None:
        """Drop audio held on the server side (nothing by default: the browser flushes)."""

    def played(self, played_total_ms: int) -> None:
        """The far end has played ``played_total_ms`` in all."""
        self.heard(self.playback.heard(played_total_ms))


class WebSocketTransport(PlayedTotalTransport):
    """The browser's call socket: JSON messages and binary 16 kHz PCM16 frames; the browser
    reports what it played (`playback` messages) and flushes its own queue on `interruption`."""

    name = AudioPath.WEBSOCKET

    def __init__(self, *, send_json: SendJson, send_bytes: SendBytes, close: Close) -> None:
        super().__init__()
        self._send_json = send_json
        self._send_bytes = send_bytes
        self._close = close

    async def send_message(self, message: dict[str, Any]) -> None:
        await self._send_json(message)

    async def write_audio(self, pcm: bytes) -> None:
        await self._send_bytes(pcm)

    async def close(self, code: int) -> None:
        await self._close(code)


class WebRTCTransport(WebSocketTransport):
    """Audio on a WebRTC track (aiortc), control messages on the call socket. The server holds
    the playout queue: what left it is what was played, and an interruption empties it."""

    name = AudioPath.WEBRTC

    def __init__(self, *, peer: CallPeer, send_json: SendJson, close: Close) -> None:
        super().__init__(send_json=send_json, send_bytes=self._enqueue, close=close)
        self.peer = peer
        self._reporter: asyncio.Task | None = None

    def attach(self, runtime: CallRuntime) -> None:
        super().attach(runtime)
        self._reporter = asyncio.create_task(
            self._report_played(), name=f"call-{runtime.call.id}-played"
        )

    async def _enqueue(self, pcm: bytes) -> None:
        self.peer.outbound.enqueue(pcm)

    def flush(self) -> None:
        self.peer.outbound.flush()

    async def _report_played(self) -> None:
        while self.runtime is not None and not self.runtime.ended.is_set():
            self.played(self.peer.outbound.played_ms)
            await asyncio.sleep(PEER_REPORT_SECONDS)

    async def stop_reporting(self) -> None:
        reporter, self._reporter = self._reporter, None
        if reporter is not None:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reporter

    async def close(self, code: int) -> None:
        await self.stop_reporting()
        await super().close(code)
