"""The media side of a call: a bidirectional Media Stream, as Twilio runs ``<Connect><Stream>``.

The emulator connects to the stream URL with an ``X-Twilio-Signature`` handshake header, sends
``connected`` and ``start``, then one inbound ``media`` frame (20 ms of 8 kHz mu-law) every
20 ms from the caller script, ``dtmf`` when asked, and ``stop`` when the call ends. What the
server sends back is played out in real time: a playout queue drained at 8000 samples/s. A
``mark`` is echoed once the audio queued before it has played (at once when nothing is
queued); ``clear`` empties the queue and echoes the pending marks at once. Everything is
recorded for tests and benches: messages both ways, received and played audio, marks, clears,
and per-utterance turn timings (end of speech -> first reply media frame).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from twilio_emulator.audio import FRAME_SAMPLES, RATE, mulaw_decode, mulaw_encode
from twilio_emulator.script import (
    CallerScript,
    Dtmf,
    Hangup,
    Silence,
    Speak,
    WaitForReply,
    last_speech_frame,
)
from twilio_emulator.signing import SIGNATURE_HEADER, twilio_signature
from twilio_emulator.twiml import StreamSpec

FRAME_SECONDS = FRAME_SAMPLES / RATE
DTMF_DIGITS = set("0123456789*#")
_SILENCE = np.zeros(FRAME_SAMPLES, dtype=np.int16)


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex  # 2 letters + 32 hex digits, like Twilio's SIDs


@dataclass
class Message:
    at: float  # time.monotonic()
    direction: str  # "sent" (emulator -> server) or "received" (server -> emulator)
    data: dict[str, Any]


@dataclass
class MarkRecord:
    name: str
    received_at: float
    queued_audio_s: float  # audio queued ahead of the mark when it arrived
    echoed_at: float | None = None
    cleared: bool = False  # echoed because of a `clear`, its audio not (fully) played


@dataclass
class ClearRecord:
    at: float
    dropped_s: float  # queued audio thrown away
    marks: list[str]


@dataclass
class Turn:
    index: int
    label: str
    started_at: float
    speech_end_at: float | None = None  # send time of the last loud frame of the utterance
    first_reply_at: float | None = None  # first server media frame received after that

    @property
    def latency(self) -> float | None:
        if self.speech_end_at is None or self.first_reply_at is None:
            return None
        return self.first_reply_at - self.speech_end_at


@dataclass
class _QueuedAudio:
    samples: np.ndarray
    start: float  # when it starts playing: on arrival, or when the audio ahead of it ends
    end: float


class MediaSession:
    """One Media Stream WebSocket. Runs on the emulator's event loop; ``run()`` returns why it
    ended: caller-hangup, hangup (REST), redirect, server-closed, handshake-failed,
    max-duration or emulator-stopped."""

    def __init__(
        self,
        *,
        spec: StreamSpec,
        connect_url: str,
        signature_url: str,
        account_sid: str,
        auth_token: str,
        call_sid: str,
        script: CallerScript,
        max_seconds: float,
        on_start: Callable[[], None] | None = None,
    ) -> None:
        self.on_start = on_start
        self.spec = spec
        self.connect_url = connect_url
        self.signature_url = signature_url
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.call_sid = call_sid
        self.stream_sid = new_sid("MZ")
        self.script = script
        self.max_seconds = max_seconds
        # Records.
        self.messages: list[Message] = []
        self.received_audio: list[tuple[float, np.ndarray]] = []
        self.played_audio: list[tuple[float, np.ndarray]] = []
        self.marks: list[MarkRecord] = []
        self.clears: list[ClearRecord] = []
        self.turns: list[Turn] = []
        self.dtmf_sent: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.stop_reason: str | None = None
        # State.
        self._ws = None
        self._seq = 0
        self._chunk = 0
        self._next_frame = 0.0
        # Playout: audio is scheduled back to back from its arrival at 8000 samples/s; a mark
        # is due when the audio queued before it ends. Nothing is played ahead of real time.
        self._queue: deque[_QueuedAudio | tuple[float, MarkRecord]] = deque()
        self._play_end = 0.0  # when the queued audio will have finished playing
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._send_lock = asyncio.Lock()

    # ------------------------------------------------------------------ control (loop only)

    def request_stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        self._stop.set()

    async def send_dtmf(self, digit: str) -> None:
        if digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        await self._send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": None,  # numbered when sent
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )
        self.dtmf_sent.append((time.monotonic(), digit))

    async def run(self) -> str:
        headers = {SIGNATURE_HEADER: twilio_signature(self.auth_token, self.signature_url, {})}
        try:
            self._ws = await connect(
                self.connect_url,
                additional_headers=headers,
                user_agent_header="Twilio.TmeWs/1.0",
                compression=None,
                ping_interval=None,
                max_size=None,
                open_timeout=10,
            )
        except Exception as exc:  # refused handshake, nothing listening, bad URL
            self.errors.append(f"handshake failed: {exc!r}")
            self.stop_reason = "handshake-failed"
            return self.stop_reason
        self.started_at = time.monotonic()
        tasks: list[asyncio.Task] = []
        try:
            await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            await self._send(
                {
                    "event": "start",
                    "sequenceNumber": None,  # numbered when sent
                    "start": {
                        "accountSid": self.account_sid,
                        "streamSid": self.stream_sid,
                        "callSid": self.call_sid,
                        "tracks": ["inbound"],
                        "mediaFormat": {
                            "encoding": "audio/x-mulaw",
                            "sampleRate": RATE,
                            "channels": 1,
                        },
                        "customParameters": dict(self.spec.parameters),
                    },
                    "streamSid": self.stream_sid,
                }
            )
            if self.on_start is not None:
                self.on_start()
            tasks = [
                asyncio.create_task(self._reader()),
                asyncio.create_task(self._playout()),
                asyncio.create_task(self._caller()),
            ]
            await self._stop.wait()
        except ConnectionClosed:
            self.request_stop("server-closed")
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception) and not isinstance(result, ConnectionClosed):
                    self.errors.append(f"internal: {result!r}")
            if self.stop_reason != "server-closed":
                try:
                    await self._send(
                        {
                            "event": "stop",
                            "sequenceNumber": None,  # numbered when sent
                            "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
                            "streamSid": self.stream_sid,
                        }
                    )
                except ConnectionClosed:
                    pass
            await self._ws.close()
            self.ended_at = time.monotonic()
        return self.stop_reason or "server-closed"

    # ------------------------------------------------------------------ records, for tests

    def received_pcm(self) -> bytes:
        """Every audio sample the server sent, PCM16 LE at 8 kHz (cleared audio included)."""
        return b"".join(pcm.astype("<i2").tobytes() for _, pcm in self.received_audio)

    def played_pcm(self) -> bytes:
        """What the caller heard, PCM16 LE at 8 kHz (cleared audio excluded, gaps removed)."""
        return b"".join(pcm.astype("<i2").tobytes() for _, pcm in self.played_audio)

    def received(self, event: str | None = None) -> list[dict[str, Any]]:
        return [
            m.data
            for m in self.messages
            if m.direction == "received" and event in (None, m.data.get("event"))
        ]

    def sent(self, event: str | None = None) -> list[dict[str, Any]]:
        return [
            m.data
            for m in self.messages
            if m.direction == "sent" and event in (None, m.data.get("event"))
        ]

    @property
    def queued_seconds(self) -> float:
        return max(0.0, self._play_end - time.monotonic())

    # ------------------------------------------------------------------ internals

    async def _send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:  # numbered in the order the messages go out
            if "sequenceNumber" in message:
                self._seq += 1
                message["sequenceNumber"] = str(self._seq)
            await self._ws.send(json.dumps(message))
        self.messages.append(Message(time.monotonic(), "sent", message))

    async def _reader(self) -> None:
        try:
            async for raw in self._ws:
                now = time.monotonic()
                if isinstance(raw, bytes):
                    self.errors.append(
                        "binary frame received (Media Streams messages are JSON text)"
                    )
                    continue
                try:
                    message = json.loads(raw)
                except ValueError:
                    self.errors.append(f"not JSON: {raw[:80]!r}")
                    continue
                self.messages.append(Message(now, "received", message))
                event = message.get("event")
                if message.get("streamSid") != self.stream_sid:
                    self.errors.append(
                        f"{event}: streamSid {message.get('streamSid')!r} is not this stream's"
                    )
                if event == "media":
                    self._on_media(message, now)
                elif event == "mark":
                    await self._on_mark(message, now)
                elif event == "clear":
                    await self._on_clear(now)
                else:
                    self.errors.append(f"unsupported message from server: {event!r}")
        except ConnectionClosed:
            pass
        self.request_stop("server-closed")

    def _on_media(self, message: dict[str, Any], now: float) -> None:
        try:
            data = base64.b64decode(message["media"]["payload"], validate=True)
        except (KeyError, TypeError, ValueError):
            self.errors.append("media: missing or invalid base64 payload")
            return
        if not data:
            self.errors.append("media: empty payload")
            return
        pcm = mulaw_decode(data)
        self.received_audio.append((now, pcm))
        if (
            self.turns
            and self.turns[-1].speech_end_at is not None
            and self.turns[-1].first_reply_at is None
        ):
            self.turns[-1].first_reply_at = now
        start = max(now, self._play_end)
        self._play_end = start + len(pcm) / RATE
        self._queue.append(_QueuedAudio(pcm, start, self._play_end))
        self._wake.set()

    async def _on_mark(self, message: dict[str, Any], now: float) -> None:
        name = (message.get("mark") or {}).get("name")
        if not isinstance(name, str):
            self.errors.append("mark: missing mark.name")
            return
        record = MarkRecord(name, now, max(0.0, self._play_end - now))
        self.marks.append(record)
        if self._play_end <= now and not self._queue:
            await self._echo(record)
        else:
            self._queue.append((max(now, self._play_end), record))
            self._wake.set()

    async def _on_clear(self, now: float) -> None:
        await self._advance(now)  # what has played by now counts as played
        dropped, pending = 0, []
        for item in self._queue:
            if isinstance(item, _QueuedAudio):
                played = max(0, min(len(item.samples), int((now - item.start) * RATE)))
                if played:
                    self.played_audio.append((item.start, item.samples[:played]))
                dropped += len(item.samples) - played
            else:
                pending.append(item[1])
        self.clears.append(ClearRecord(now, dropped / RATE, [m.name for m in pending]))
        self._queue.clear()
        self._play_end = now
        for record in pending:
            record.cleared = True
            await self._echo(record)

    async def _advance(self, now: float) -> None:
        """Retire the audio that has finished playing by ``now`` and echo the marks due."""
        while self._queue:
            head = self._queue[0]
            if isinstance(head, _QueuedAudio):
                if head.end > now:
                    return
                self.played_audio.append((head.start, head.samples))
            elif head[0] > now:
                return
            self._queue.popleft()
            if not isinstance(head, _QueuedAudio):
                await self._echo(head[1])

    async def _echo(self, record: MarkRecord) -> None:
        await self._send(
            {
                "event": "mark",
                "sequenceNumber": None,  # numbered when sent
                "streamSid": self.stream_sid,
                "mark": {"name": record.name},
            }
        )
        record.echoed_at = time.monotonic()

    async def _playout(self) -> None:
        """Sleep until the next audio end or mark due (or new server audio), then retire."""
        while True:
            await self._advance(time.monotonic())
            head = self._queue[0] if self._queue else None
            if head is None:
                timeout = None
            else:
                due = head.end if isinstance(head, _QueuedAudio) else head[0]
                timeout = max(0.0, due - time.monotonic())
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    async def _send_frame(self, samples: np.ndarray) -> float:
        self._next_frame += FRAME_SECONDS
        await _sleep_until(self._next_frame)
        if time.monotonic() - self.started_at > self.max_seconds:
            self.request_stop("max-duration")
        self._chunk += 1
        await self._send(
            {
                "event": "media",
                "sequenceNumber": None,  # numbered when sent
                "media": {
                    "track": "inbound",
                    "chunk": str(self._chunk),
                    "timestamp": str((self._chunk - 1) * 20),
                    "payload": base64.b64encode(mulaw_encode(samples)).decode(),
                },
                "streamSid": self.stream_sid,
            }
        )
        return time.monotonic()

    async def _caller(self) -> None:
        self._next_frame = self.started_at
        for item in self.script.items:
            if isinstance(item, Speak):
                frames = item.frames()
                end = last_speech_frame(frames)
                turn = Turn(len(self.turns), item.label, started_at=0.0)
                for index, frame in enumerate(frames):
                    sent_at = await self._send_frame(frame)
                    if index == 0:
                        turn.started_at = sent_at
                        self.turns.append(turn)
                    if index == end:
                        turn.speech_end_at = sent_at
            elif isinstance(item, Silence):
                for _ in range(round(item.seconds / FRAME_SECONDS)):
                    await self._send_frame(_SILENCE)
            elif isinstance(item, Dtmf):
                await self.send_dtmf(item.digit)
            elif isinstance(item, WaitForReply):
                await self._wait_for_reply(item)
            elif isinstance(item, Hangup):
                self.request_stop("caller-hangup")
                return
        while True:  # stay on the line, silent
            await self._send_frame(_SILENCE)

    async def _wait_for_reply(self, item: WaitForReply) -> None:
        deadline = time.monotonic() + item.timeout
        while time.monotonic() < deadline:
            await self._send_frame(_SILENCE)
            heard = (
                self.turns[-1].first_reply_at is not None
                if self.turns
                else bool(self.received_audio)
            )
            idle = not self._queue and time.monotonic() - self._play_end >= item.settle
            if heard and idle:
                return


async def _sleep_until(when: float) -> None:
    delay = when - time.monotonic()
    if delay > 0:
        await asyncio.sleep(delay)
