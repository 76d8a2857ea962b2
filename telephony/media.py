"""Twilio Media Streams: the phone's audio, bridged to a call's runtime.

Twilio connects a WebSocket to `twilio_client.STREAM_PATH` once the call is answered (TwiML
`<Connect><Stream>`, bidirectional) and sends JSON messages: `connected`, `start` (the call's
id and single-use token in `customParameters`), `media` (8 kHz mu-law, base64), `mark` (a mark
we sent, echoed when the audio before it has played), `dtmf` and `stop`.

- The handshake's X-Twilio-Signature is checked, with the call's account token, when `start`
  names the call (`telephony.services.stream_token_consume`): a stream without a valid
  signature and token is closed and changes nothing.
- `TwilioStreamTransport` is the runtime's third transport (`calls.transport`): the
  assistant's 16 kHz audio goes out as mu-law `media` chunks of 40 ms, each followed by a
  `mark`; what the caller heard is the last mark Twilio echoed, not what was sent. On an
  interruption it sends `clear`, and the marks Twilio echoes for the cleared audio are not
  counted as heard.
- `stop` is the caller hanging up; a socket that closes without it is a lost connection.
  When the assistant ends the call, `call.ended` hangs the call up at Twilio (a job, see
  `telephony.receivers`) and the socket is closed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer

from calls import capacity, services
from calls.consumers import FrameDispatch
from calls.protocol import MAX_TEXT_BYTES, CloseCode
from calls.runtime import CallRuntime
from calls.transport import CallTransport, engine_ms
from calls.vocabulary import EndReason
from telephony import services as telephony
from voice.audio import StreamResampler, mulaw_to_pcm16, pcm16_to_mulaw

logger = logging.getLogger(__name__)

PHONE_RATE = 8000
ENGINE_RATE = 16000
#: Outbound media chunk: 40 ms of 8 kHz mu-law (Twilio plays whatever size it gets).
CHUNK_MS = 40
CHUNK_BYTES = PHONE_RATE * CHUNK_MS // 1000
START_TIMEOUT_SECONDS = 10
MAX_MEDIA_PAYLOAD = 8000  # one second of mu-law: far more than Twilio's 20 ms frames


class TwilioStreamTransport(CallTransport):
    """The call's far end is Twilio: media, mark and clear messages on the stream socket."""

    name = telephony.STREAM_TRANSPORT
    sample_rate = PHONE_RATE

    def __init__(self, consumer: TwilioStreamConsumer, stream_sid: str) -> None:
        super().__init__()
        self.consumer = consumer
        self.stream_sid = stream_sid
        self._down = StreamResampler(ENGINE_RATE, PHONE_RATE, low_latency=True)
        self._pending = b""  # mu-law not sent yet (less than a chunk)
        self._pending_ms = 0  # engine ms those bytes stand for
        self.sent_ms = 0  # engine ms sent in all (the position a mark stands for)
        self.utterance_start_ms = 0
        self.acked_ms = 0  # position of the last mark Twilio echoed for audio it played
        self._marks: dict[str, int] = {}  # mark name -> position, sent and not echoed
        self._cleared: set[str] = set()  # marks of audio dropped by a clear
        self._mark_seq = 0
        self.clears = 0

    async def send_audio(self, pcm: bytes) -> None:
        self._pending += pcm16_to_mulaw(self._down.process(pcm))
        self._pending_ms += engine_ms(pcm)
        while len(self._pending) >= CHUNK_BYTES:
            chunk, self._pending = self._pending[:CHUNK_BYTES], self._pending[CHUNK_BYTES:]
            share = min(self._pending_ms, CHUNK_MS)
            self._pending_ms -= share
            await self._send_chunk(chunk, share)

    async def _send_chunk(self, chunk: bytes, ms: int) -> None:
        payload = base64.b64encode(chunk).decode("ascii")
        await self.consumer.send_event({"event": "media", "media": {"payload": payload}})
        self.sent_ms += ms
        self._mark_seq += 1
        name = f"m{self._mark_seq}"
        self._marks[name] = self.sent_ms
        await self.consumer.send_event({"event": "mark", "mark": {"name": name}})

    def utterance_started(self) -> None:
        self.utterance_start_ms = self.sent_ms

    def interrupted(self) -> None:
        """Barge-in: Twilio drops its buffer on `clear` and then echoes every pending mark;
        those marks stand for audio nobody heard."""
        self._pending, self._pending_ms = b"", 0
        self._cleared.update(self._marks)
        self._marks.clear()
        self.clears += 1
        self.consumer.send_soon({"event": "clear"})

    def mark_echoed(self, name: str) -> None:
        if name in self._cleared:
            self._cleared.discard(name)
            return
        position = self._marks.pop(name, None)
        if position is None:
            return
        # Marks come back in order; any older one still listed was played too.
        for older in [n for n, p in self._marks.items() if p <= position]:
            del self._marks[older]
        self.acked_ms = max(self.acked_ms, position)
        self.heard(max(0, self.acked_ms - self.utterance_start_ms))

    async def close(self, code: int) -> None:
        await self.consumer.close_after_end(code)


class TwilioStreamConsumer(FrameDispatch, AsyncWebsocketConsumer):
    """One Twilio media stream (see the module's docstring)."""

    call = None
    runtime: CallRuntime | None = None
    transport: TwilioStreamTransport | None = None
    closing = False
    call_over = False
    signature = ""
    start_timer: asyncio.TimerHandle | None = None

    def _call_id(self) -> str:
        return self.call.id if self.call is not None else "-"

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.call is not None and not self.call_over:
                with contextlib.suppress(Exception):
                    await self.end_call(EndReason.ERROR)

    async def dispatch(self, message: dict[str, Any]) -> None:
        try:
            await super().dispatch(message)
        except StopConsumer:
            raise
        except Exception:
            logger.exception("phone call %s: %s failed", self._call_id(), message.get("type"))
            await self.end_call(EndReason.ERROR)
            await self.close_after_end(CloseCode.SERVER_ERROR)
            if message.get("type") == "websocket.disconnect":
                raise StopConsumer() from None

    async def connect(self) -> None:
        for key, value in self.scope.get("headers", []):
            if key.lower() == b"x-twilio-signature":
                self.signature = value.decode("latin-1")
        if not self.signature:
            await self.close(code=int(CloseCode.BAD_TOKEN))  # refused before accepting
            return
        await self.accept()
        self.start_timer = asyncio.get_running_loop().call_later(
            START_TIMEOUT_SECONDS, lambda: asyncio.ensure_future(self.no_start())
        )

    async def no_start(self) -> None:
        if self.call is None and not self.closing:
            logger.warning("media stream without a start message: closed")
            await self.close_after_end(CloseCode.NO_HELLO)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.closing or text_data is None or len(text_data) > MAX_TEXT_BYTES * 4:
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        event = message.get("event")
        if event == "media":
            self.media(message.get("media"))
        elif event == "start" and self.call is None:
            await self.start(message.get("start"))
        elif event == "mark" and self.transport is not None:
            mark = message.get("mark")
            if isinstance(mark, dict) and isinstance(mark.get("name"), str):
                self.transport.mark_echoed(mark["name"])
        elif event == "dtmf" and self.runtime is not None:
            dtmf = message.get("dtmf")
            digit = dtmf.get("digit") if isinstance(dtmf, dict) else None
            if isinstance(digit, str) and len(digit) == 1:
                self.runtime.push_digit(digit)
        elif event == "stop":
            await self.end_call(EndReason.HANGUP)

    def media(self, media: Any) -> None:
        if self.runtime is None or not isinstance(media, dict):
            return
        if media.get("track", "inbound") != "inbound":
            return
        payload = media.get("payload")
        if not isinstance(payload, str) or len(payload) > MAX_MEDIA_PAYLOAD * 2:
            return
        try:
            ulaw = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            return
        pcm = self.up.process(mulaw_to_pcm16(ulaw))
        if pcm:
            self.runtime.push_audio(pcm)

    async def start(self, start: Any) -> None:
        if self.start_timer is not None:
            self.start_timer.cancel()
        start = start if isinstance(start, dict) else {}
        params = start.get("customParameters")
        params = params if isinstance(params, dict) else {}
        stream_sid = start.get("streamSid")
        call_id, token = params.get("call_id"), params.get("token")
        call = None
        if isinstance(stream_sid, str) and isinstance(call_id, str) and isinstance(token, str):
            call = await database_sync_to_async(telephony.stream_token_consume)(
                call_id, token, signature=self.signature
            )
        if call is None:
            logger.warning("media stream refused: bad signature, call or token")
            await self.close_after_end(CloseCode.BAD_TOKEN)
            return
        self.call = call
        if not capacity.room_for(await database_sync_to_async(capacity.unclaimed)()):
            await self.end_call(EndReason.SERVER_BUSY)
            await self.close_after_end(CloseCode.BUSY)
            return
        self.up = StreamResampler(PHONE_RATE, ENGINE_RATE, low_latency=True)
        self.transport = TwilioStreamTransport(self, stream_sid)
        self.runtime = CallRuntime(call=call, transport=self.transport)
        await self.runtime.start()

    async def end_call(self, reason: str) -> None:
        """End this stream's call exactly once (its runtime stores the end)."""
        runtime, self.runtime = self.runtime, None
        already, self.call_over = self.call_over, True
        if runtime is not None:
            await runtime.stop(reason)
        elif not already and self.call is not None:
            await database_sync_to_async(services.call_end)(call_id=self.call.id, reason=reason)

    async def disconnect(self, code) -> None:
        self.closing = True
        if self.start_timer is not None:
            self.start_timer.cancel()
        if self.call is not None:
            await self.end_call(EndReason.CONNECTION_LOST)

    # --- for the transport ---

    async def send_event(self, message: dict[str, Any]) -> None:
        if not self.closing and self.transport is not None:
            message["streamSid"] = self.transport.stream_sid
            await self.send(text_data=json.dumps(message))

    def send_soon(self, message: dict[str, Any]) -> None:
        """From synchronous code (an interruption): sent as soon as the loop runs."""
        asyncio.ensure_future(self.send_event(message))

    async def close_after_end(self, code: int) -> None:
        self.call_over = self.call_over or self.call is not None
        if not self.closing:
            self.closing = True
            try:
                await self.close(code=int(code))
            except Exception:
                logger.exception("phone call %s: closing the stream failed", self._call_id())
