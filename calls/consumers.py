"""The call socket, `/new-web-call/connection`: checks, then bridges a browser to a call.

Thin edge: parses the query and messages, enforces size and rate limits, and hands
everything else to `calls.runtime.CallRuntime`. The message protocol is in README.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from calls import services
from calls.runtime import CallRuntime
from calls.webrtc import CallPeer, ice_servers, webrtc_available

logger = logging.getLogger(__name__)

MAX_BINARY_BYTES = 3200  # 100 ms of 16 kHz PCM16
MAX_TEXT_BYTES = 64 * 1024
RATE_PER_SECOND = 100  # 20 ms audio frames are 50 a second
RATE_BURST = 200
HELLO_TIMEOUT_SECONDS = 10


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


class WebCallConsumer(AsyncWebsocketConsumer):
    call = None
    runtime: CallRuntime | None = None
    closing = False
    abort_with: tuple[int, str] | None = None
    peer: CallPeer | None = None
    played_reporter: asyncio.Task | None = None

    async def connect(self) -> None:
        # Accept first: a refusal before accepting reaches the browser as a bare 403, and
        # the client deserves the code and the reason.
        await self.accept()
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        try:
            self.call = await database_sync_to_async(services.call_claim)(
                call_id=(query.get("call_id") or [""])[0],
                assistant_id=(query.get("assistant_id") or [""])[0],
                token=(query.get("token") or [""])[0],
                origin=_header(self.scope, b"origin"),
                own_origin=_own_origin(self.scope),
            )
        except services.GatewayRefused as refused:
            await self.refuse(refused.code, refused.reason)
            return
        self.bucket = TokenBucket(RATE_PER_SECOND, RATE_BURST)
        # Always sent right after the checks, so the client need not guess how long to wait.
        enabled = webrtc_available()
        await self.send_json(
            {
                "type": "webrtc.config",
                "enabled": enabled,
                "ice_servers": ice_servers() if enabled else [],
            }
        )
        self.hello_timer = asyncio.get_running_loop().call_later(
            HELLO_TIMEOUT_SECONDS, lambda: asyncio.ensure_future(self.hello_timeout())
        )

    async def refuse(self, code: int, reason: str, stage: str = "connect") -> None:
        """Close with a code and reason; the reason also goes as a message (daphne drops it)."""
        if self.closing:
            return
        self.closing = True
        with contextlib.suppress(Exception):
            await self.send(
                text_data=json.dumps(
                    {"type": "error", "stage": stage, "code": code, "message": reason}
                )
            )
        await self.close(code=code, reason=reason)

    async def hello_timeout(self) -> None:
        if self.runtime is None and not self.closing:
            await database_sync_to_async(services.call_end)(call_id=self.call.id, reason="no_hello")
            await self.refuse(4408, "No hello message within 10 seconds.")

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.call is None or self.closing:
            return
        if not self.bucket.take():
            await self.abort(1008, "Too many messages.")
            return
        if bytes_data is not None:
            if len(bytes_data) > MAX_BINARY_BYTES:
                await self.abort(1009, f"Audio frames are at most {MAX_BINARY_BYTES} bytes.")
            elif self.runtime is not None and len(bytes_data) % 2 == 0:
                self.runtime.push_audio(bytes_data)
            return
        if text_data is None:
            return
        if len(text_data) > MAX_TEXT_BYTES:
            await self.abort(1009, "Message too big.")
            return
        try:
            message = json.loads(text_data)
            kind = message["type"]
        except (ValueError, TypeError, KeyError):
            await self.send_json(
                {
                    "type": "error",
                    "stage": "protocol",
                    "message": "Expected a JSON object with a type.",
                }
            )
            return
        await self.handle_message(kind, message)

    async def handle_message(self, kind: str, message: dict) -> None:
        if kind == "hello" and self.runtime is None:
            self.hello_timer.cancel()
            use_webrtc = message.get("audio") == "webrtc" and self.peer is not None
            if not use_webrtc and self.peer is not None:
                await self.close_peer()  # the client fell back to WebSocket audio
            self.runtime = CallRuntime(
                call=self.call,
                transport="webrtc" if use_webrtc else "websocket",
                send_json=self.send_json,
                send_bytes=self.send_peer_audio if use_webrtc else self.send_audio,
                close=self.close_after_end,
                flush=self.peer.outbound.flush if use_webrtc else None,
            )
            if use_webrtc:
                self.played_reporter = asyncio.create_task(self.report_peer_playback())
            try:
                await self.runtime.start()
            except Exception:
                logger.exception("call %s: could not start", self.call.id)
                await self.runtime.stop("error")
        elif kind == "webrtc.offer" and self.runtime is None and self.peer is None:
            await self.negotiate(message.get("sdp"))
        elif kind == "playback" and self.runtime is not None and self.peer is None:
            played = message.get("played_ms")
            if isinstance(played, int | float) and played >= 0:
                self.runtime.report_played(int(played))
        elif kind == "end" and self.runtime is not None:
            await self.runtime.stop("hangup")
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "mute":
            logger.info("call %s: muted=%s", self.call.id, bool(message.get("muted")))

    # --- WebRTC ---

    async def negotiate(self, sdp) -> None:
        if not webrtc_available() or not isinstance(sdp, str) or len(sdp) > MAX_TEXT_BYTES:
            await self.send_json(
                {"type": "error", "stage": "webrtc", "message": "WebRTC offer refused."}
            )
            return
        self.peer = CallPeer(on_audio=self.peer_audio, on_state=self.peer_state)
        try:
            answer = await self.peer.answer(sdp)
        except Exception as exc:
            logger.warning("call %s: WebRTC negotiation failed: %s", self.call.id, exc)
            await self.close_peer()
            await self.send_json(
                {"type": "error", "stage": "webrtc", "message": "WebRTC negotiation failed."}
            )
            return
        await self.send_json({"type": "webrtc.answer", "sdp": answer})

    def peer_audio(self, pcm: bytes) -> None:
        if self.runtime is not None and self.runtime.transport == "webrtc":
            self.runtime.push_audio(pcm)

    async def peer_state(self, state: str) -> None:
        logger.info("call %s: WebRTC connection %s", self.call.id, state)
        if (
            state in ("failed", "closed", "media_timeout")
            and self.runtime is not None
            and self.runtime.transport == "webrtc"
        ):
            runtime, self.runtime = self.runtime, None
            await runtime.stop("connection_lost")

    async def send_peer_audio(self, pcm: bytes) -> None:
        if self.peer is not None:
            self.peer.outbound.enqueue(pcm)

    async def report_peer_playback(self) -> None:
        """On WebRTC the server holds the playout buffer: what left it is what was heard."""
        while self.runtime is not None and self.peer is not None:
            self.runtime.report_played(self.peer.outbound.played_ms)
            await asyncio.sleep(0.1)

    async def close_peer(self) -> None:
        peer, self.peer = self.peer, None
        if self.played_reporter is not None:
            self.played_reporter.cancel()
            self.played_reporter = None
        if peer is not None:
            await peer.close()

    async def abort(self, code: int, reason: str) -> None:
        """A misbehaving client: end the call (keeping what was said) and close with `code`."""
        self.abort_with = (code, reason)
        if self.runtime is not None:
            runtime, self.runtime = self.runtime, None
            await runtime.stop("client_gone")  # closes through close_after_end
        else:
            await database_sync_to_async(services.call_end)(
                call_id=self.call.id, reason="client_gone"
            )
        await self.refuse(code, reason, "protocol")

    async def disconnect(self, code) -> None:
        self.closing = True
        if self.call is None:
            return
        timer = getattr(self, "hello_timer", None)
        if timer is not None:
            timer.cancel()
        if self.runtime is not None:
            await self.runtime.stop("client_gone")
        else:
            await database_sync_to_async(services.call_end)(
                call_id=self.call.id, reason="client_gone"
            )
        await self.close_peer()

    # --- callbacks for the runtime ---

    async def send_json(self, data: dict) -> None:
        if not self.closing:
            await self.send(text_data=json.dumps(data))

    async def send_audio(self, pcm: bytes) -> None:
        if not self.closing:
            await self.send(bytes_data=pcm)

    async def close_after_end(self, code: int) -> None:
        """The call has ended: close the socket and release the peer right away."""
        if self.abort_with is not None:
            await self.refuse(*self.abort_with, "protocol")
        elif not self.closing:
            self.closing = True
            await self.close(code=code)
        await self.close_peer()
