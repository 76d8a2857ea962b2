"""The call socket, `/new-web-call/connection`: checks, then bridges a browser to a call.

Thin edge: parses the query and messages, enforces size, depth and rate limits, and hands
everything else to `calls.runtime.CallRuntime`. The vocabulary (close codes, message types)
is in `calls.protocol`; the protocol itself is in README.md.

Two rules keep a call from outliving its socket:

- every exception at the message boundary (`dispatch`: connect, receive, the handlers, the
  hello's start) is logged, the call ends once `failed` with `error`, and the socket closes
  4500;
- however the consumer ends (disconnect, abort, exception, cancellation), the call's runtime
  and voice session stop and the call ends exactly once (`end_call`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.ids import is_object_id
from calls import capacity, services
from calls.control import ControlAction, call_control_group
from calls.protocol import (
    MAX_BINARY_BYTES,
    MAX_TEXT_BYTES,
    AudioPath,
    ClientMessage,
    CloseCode,
    ErrorStage,
    ProtocolError,
    ServerMessage,
    decode_client_message,
    played_ms_of,
    text_only_of,
    text_too_big,
    typed_text_of,
)
from calls.runtime import CallRuntime, EarlyAudio
from calls.transport import WebRTCTransport, WebSocketTransport
from calls.vocabulary import EndReason
from calls.webrtc import CallPeer, ice_servers, webrtc_available

logger = logging.getLogger(__name__)

RATE_PER_SECOND = 100  # 20 ms audio frames are 50 a second
RATE_BURST = 200
TYPED_PER_SECOND = 1  # typed lines: each one starts a reply
TYPED_BURST = 5
TYPED_TOO_FAST_TEXT = "Too many typed messages: wait a moment."
NO_TEXT_NOW_TEXT = "The call cannot take typed text now."
HELLO_TIMEOUT_SECONDS = 10
SERVER_ERROR_TEXT = "The server had a problem and the call ended."
BUSY_TEXT = "The assistant is busy with other calls. Try again in a moment."


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.capacity, self.tokens = rate, burst, burst
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _header(scope, name: bytes) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _own_origin(scope) -> str:
    """This server's origin as the client reached it (http(s) for ws(s)); behind a trusted
    proxy its X-Forwarded-Proto / -Host, as Django does for HTTP."""
    secure = scope.get("scheme") == "wss"
    host = _header(scope, b"host")
    if settings.TRUST_PROXY_HEADERS:
        secure = _header(scope, b"x-forwarded-proto").lower() == "https" or secure
        host = _header(scope, b"x-forwarded-host") or host
    return f"{'https' if secure else 'http'}://{host}".lower() if host else ""


class FrameDispatch:
    """Channels closes stale database connections (a hop to a thread) before every message a
    consumer handles. A call's socket carries about 50 audio frames a second and they touch no
    database (whatever does, goes through `database_sync_to_async`, which does its own
    closing): they go straight to the handler. Half the phone path's CPU went to that hop."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)


class WebCallConsumer(FrameDispatch, AsyncWebsocketConsumer):
    call = None
    runtime: CallRuntime | None = None
    closing = False  # the socket is closed, or a close was sent: send nothing more
    call_over = False  # this consumer ended the call (or saw its runtime end it)
    abort_with: tuple[CloseCode, str, ErrorStage] | None = None
    peer: CallPeer | None = None
    hello_timer: asyncio.TimerHandle | None = None
    control_group = ""  # call_control_group(call_id): end/cancel over the REST API

    def _call_id(self) -> str:
        return self.call.id if self.call is not None else "-"

    # --- the boundary ---

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # However this consumer ends (daphne cancelling it included), its call does too.
            if self.call is not None and (self.runtime is not None or not self.call_over):
                try:
                    await self.end_call(EndReason.ERROR)
                except Exception:
                    logger.exception("call %s: ending the call failed", self._call_id())

    async def dispatch(self, message: dict[str, Any]) -> None:
        try:
            await super().dispatch(message)
        except StopConsumer:
            raise
        except Exception:  # RecursionError, OverflowError, a bug: never a zombie call
            logger.exception("call %s: %s failed", self._call_id(), message.get("type"))
            await self.fail()
            if message.get("type") == "websocket.disconnect":
                raise StopConsumer() from None

    async def fail(self) -> None:
        """An unexpected error: the call ends `failed` (`error`) and the socket closes 4500."""
        try:
            if self.call is None:
                await self.refuse(CloseCode.SERVER_ERROR, SERVER_ERROR_TEXT, ErrorStage.SERVER)
            else:
                await self.abort(
                    CloseCode.SERVER_ERROR,
                    SERVER_ERROR_TEXT,
                    end_reason=EndReason.ERROR,
                    stage=ErrorStage.SERVER,
                )
        except Exception:
            logger.exception("call %s: failing the call failed", self._call_id())

    # --- connect ---

    async def connect(self) -> None:
        self.bucket = TokenBucket(RATE_PER_SECOND, RATE_BURST)
        self.typed_bucket = TokenBucket(TYPED_PER_SECOND, TYPED_BURST)
        # Microphone audio sent before `hello` (the latest 2 s), handed to the runtime.
        self.early_audio = EarlyAudio()
        # Accept first: a refusal before accepting reaches the browser as a bare 403, and
        # the client deserves the code and the reason.
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        call_id = (query.get("call_id") or [""])[0]
        if is_object_id(call_id) and self.channel_layer is not None:
            # Joined before the claim: an end/cancel sent once the call is claimed (the REST
            # view sends it only then) always finds this consumer listening.
            self.control_group = call_control_group(call_id)
            await self.channel_layer.group_add(self.control_group, self.channel_name)
        try:
            self.call = await database_sync_to_async(services.call_claim)(
                call_id=call_id,
                assistant_id=(query.get("assistant_id") or [""])[0],
                token=(query.get("token") or [""])[0],
                origin=_header(self.scope, b"origin"),
                own_origin=_own_origin(self.scope),
            )
        except services.GatewayRefused as refused:
            await self.leave_control_group()
            await self.refuse(CloseCode(refused.code), refused.reason)
            return
        # Always sent right after the checks, so the client need not guess how long to wait.
        enabled = webrtc_available()
        await self.send_json(
            {
                "type": ServerMessage.WEBRTC_CONFIG,
                "enabled": enabled,
                "ice_servers": ice_servers() if enabled else [],
            }
        )
        self.hello_timer = asyncio.get_running_loop().call_later(
            HELLO_TIMEOUT_SECONDS, lambda: asyncio.ensure_future(self.hello_timeout())
        )

    async def refuse(
        self, code: CloseCode, reason: str, stage: ErrorStage = ErrorStage.CONNECT
    ) -> None:
        """Close with a code and reason; the reason also goes as a message (daphne drops it)."""
        if self.closing:
            return
        self.closing = True
        message = {
            "type": ServerMessage.ERROR,
            "stage": stage,
            "code": int(code),
            "message": reason,
        }
        with contextlib.suppress(Exception):
            await self.send(text_data=json.dumps(message))
        try:
            await self.close(code=int(code), reason=reason)
        except Exception:
            logger.exception("call %s: closing the socket failed", self._call_id())

    async def hello_timeout(self) -> None:
        try:
            if self.runtime is None and not self.closing and not self.call_over:
                await self.end_call(EndReason.NO_HELLO)
                await self.refuse(
                    CloseCode.NO_HELLO,
                    f"No hello message within {HELLO_TIMEOUT_SECONDS:g} seconds.",
                )
        except Exception:  # a timer callback: nobody else would see this
            logger.exception("call %s: the hello timeout failed", self._call_id())
            await self.fail()

    # --- messages ---

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.call is None or self.closing:
            return
        if not self.bucket.take():
            await self.abort(CloseCode.FLOODING, "Too many messages.")
            return
        if bytes_data is not None:
            if len(bytes_data) > MAX_BINARY_BYTES:
                await self.abort(
                    CloseCode.TOO_BIG, f"Audio frames are at most {MAX_BINARY_BYTES} bytes."
                )
            elif len(bytes_data) % 2 == 0:
                if self.runtime is not None:
                    self.runtime.push_audio(bytes_data)
                elif not self.call_over:  # before `hello`: kept (bounded) for the session
                    self.early_audio.add(bytes_data)
            return
        if text_data is None:
            return
        if text_too_big(text_data):
            await self.abort(
                CloseCode.TOO_BIG, f"Text messages are at most {MAX_TEXT_BYTES} bytes (UTF-8)."
            )
            return
        try:
            kind, message = decode_client_message(text_data)
            await self.handle_message(kind, message)
        except ProtocolError as refused:
            # Refused, and the call goes on: a bad message is not worth a caller's call.
            await self.send_json(
                {"type": ServerMessage.ERROR, "stage": ErrorStage.PROTOCOL, "message": str(refused)}
            )

    async def handle_message(self, kind: ClientMessage, message: dict[str, Any]) -> None:
        if kind == ClientMessage.HELLO and self.runtime is None and not self.call_over:
            await self.start_call(message)
        elif kind == ClientMessage.WEBRTC_OFFER and self.runtime is None and self.peer is None:
            await self.negotiate(message.get("sdp"))
        elif kind == ClientMessage.PLAYBACK:
            played = played_ms_of(message)  # checked even when it is not needed: one rule
            if self.runtime is not None and self.peer is None:
                self.runtime.report_played(played)
        elif kind == ClientMessage.END and self.runtime is not None:
            await self.runtime.stop(EndReason.HANGUP)
        elif kind == ClientMessage.PING:
            await self.send_json({"type": ServerMessage.PONG})
        elif kind == ClientMessage.TEXT:
            text = typed_text_of(message)  # checked even before the call starts: one rule
            if not self.typed_bucket.take():
                raise ProtocolError(TYPED_TOO_FAST_TEXT)
            if self.runtime is None or not self.runtime.push_text(text):
                raise ProtocolError(NO_TEXT_NOW_TEXT)
        elif kind == ClientMessage.MUTE:
            logger.info("call %s: muted=%s", self.call.id, bool(message.get("muted")))

    async def start_call(self, message: dict[str, Any]) -> None:
        if self.hello_timer is not None:
            self.hello_timer.cancel()
        text_only = text_only_of(message)  # no microphone: the visitor types
        use_webrtc = (
            message.get("audio") == AudioPath.WEBRTC and self.peer is not None and not text_only
        )
        if not use_webrtc and self.peer is not None:
            await self.close_peer()  # the client fell back to WebSocket audio
        # The socket may land on a process other than the one that created the call. No wait
        # between this check and the runtime counting itself (start()'s first line).
        if not capacity.room_for(await database_sync_to_async(capacity.unclaimed)()):
            await self.abort(
                CloseCode.BUSY, BUSY_TEXT, end_reason=EndReason.SERVER_BUSY, stage=ErrorStage.SERVER
            )
            return
        if use_webrtc:
            transport = WebRTCTransport(
                peer=self.peer, send_json=self.send_json, close=self.close_after_end
            )
        else:
            transport = WebSocketTransport(
                send_json=self.send_json, send_bytes=self.send_audio, close=self.close_after_end
            )
        self.runtime = CallRuntime(call=self.call, transport=transport, text_only=text_only)
        self.runtime.push_audio(self.early_audio.take())  # spoken before `hello`: not lost
        await self.runtime.start()  # an error here is the boundary's: failed/error, 4500

    # --- WebRTC ---

    async def negotiate(self, sdp) -> None:
        if not webrtc_available() or not isinstance(sdp, str) or not sdp:
            await self.send_json(
                {
                    "type": ServerMessage.ERROR,
                    "stage": ErrorStage.WEBRTC,
                    "message": "WebRTC offer refused.",
                }
            )
            return
        self.peer = CallPeer(on_audio=self.peer_audio, on_state=self.peer_state)
        try:
            answer = await self.peer.answer(sdp)
        except Exception as exc:
            logger.warning("call %s: WebRTC negotiation failed: %s", self.call.id, exc)
            await self.close_peer()
            await self.send_json(
                {
                    "type": ServerMessage.ERROR,
                    "stage": ErrorStage.WEBRTC,
                    "message": "WebRTC negotiation failed.",
                }
            )
            return
        await self.send_json({"type": ServerMessage.WEBRTC_ANSWER, "sdp": answer})

    def _on_webrtc(self) -> bool:
        return self.runtime is not None and self.runtime.transport.name == AudioPath.WEBRTC

    def peer_audio(self, pcm: bytes) -> None:
        if self._on_webrtc():
            self.runtime.push_audio(pcm)

    async def peer_state(self, state: str) -> None:
        logger.info("call %s: WebRTC connection %s", self.call.id, state)
        if state in ("failed", "closed", "media_timeout") and self._on_webrtc():
            await self.end_call(EndReason.CONNECTION_LOST)

    async def close_peer(self) -> None:
        peer, self.peer = self.peer, None
        if peer is not None:
            await peer.close()

    # --- ending ---

    async def end_call(self, reason: str) -> None:
        """End this socket's call exactly once: its runtime and voice session when one runs
        (the runtime stores the end), else the call row itself. Idempotent."""
        if self.hello_timer is not None:
            self.hello_timer.cancel()
        runtime, self.runtime = self.runtime, None
        already, self.call_over = self.call_over, True
        try:
            if runtime is not None:
                await runtime.stop(reason)
            elif not already:
                await database_sync_to_async(services.call_end)(call_id=self.call.id, reason=reason)
        finally:
            await self.close_peer()

    async def abort(
        self,
        code: CloseCode,
        reason: str,
        *,
        end_reason: str = EndReason.CLIENT_GONE,
        stage: ErrorStage = ErrorStage.PROTOCOL,
    ) -> None:
        """End the call (keeping what was said) and close with `code`: a misbehaving client
        (the call ends as if the client had gone), or a server error or refusal."""
        if self.abort_with is None:
            self.abort_with = (code, reason, stage)
        try:
            await self.end_call(end_reason)  # closes through close_after_end when it ran
        finally:
            await self.refuse(*self.abort_with)

    async def disconnect(self, code) -> None:
        self.closing = True
        await self.leave_control_group()
        if self.call is not None:
            await self.end_call(EndReason.CLIENT_GONE)

    async def leave_control_group(self) -> None:
        group, self.control_group = self.control_group, ""
        if group and self.channel_layer is not None:
            await self.channel_layer.group_discard(group, self.channel_name)

    # --- from the REST API (calls.control), through the channel layer ---

    async def call_control(self, message: dict[str, Any]) -> None:
        """`end`: the assistant says goodbye, then the call ends `completed` / `api_end`;
        `cancel`: it stops at once, `failed` / `canceled`. A call not started yet (claimed,
        no hello) is canceled by either: there is no conversation to close."""
        if self.call is None or self.call_over or self.closing:
            return
        action = message.get("action")
        if action not in set(ControlAction):
            logger.warning("call %s: unknown control action %r", self.call.id, action)
            return
        if self.runtime is None:
            await self.end_call(EndReason.CANCELED)
            await self.send_json({"type": ServerMessage.CALL_ENDED, "reason": EndReason.CANCELED})
            await self.close_after_end(CloseCode.NORMAL)
        elif action == ControlAction.END:
            await self.runtime.end_gracefully(EndReason.API_END)
        else:
            # The runtime sends call.ended and closes the socket (close_after_end).
            await self.end_call(EndReason.CANCELED)

    # --- callbacks for the runtime ---

    async def send_json(self, data: dict) -> None:
        if not self.closing:
            await self.send(text_data=json.dumps(data))

    async def send_audio(self, pcm: bytes) -> None:
        if not self.closing:
            await self.send(bytes_data=pcm)

    async def close_after_end(self, code: int) -> None:
        """The call has ended (call.ended is sent): close the socket and release the peer."""
        self.call_over = True
        if self.abort_with is not None:
            await self.refuse(*self.abort_with)
        elif not self.closing:
            self.closing = True
            try:
                await self.close(code=int(code))
            except Exception:
                logger.exception("call %s: closing the socket failed", self._call_id())
        await self.close_peer()
