"""WebRTC audio for a call with aiortc: a server peer negotiated on the call socket.

Incoming Opus is decoded by aiortc and resampled to 16 kHz PCM16 mono for the voice session;
the session's audio goes out on a track paced at 20 ms. Events keep flowing over the socket,
and the call's lifecycle and persistence are the same as on the WebSocket path.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fractions
import logging
import time
from collections.abc import Awaitable, Callable

from django.conf import settings

logger = logging.getLogger(__name__)

FRAME_MS = 20
SAMPLE_RATE = 16000
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2
# A browser sends audio packets all the time (silence too, and while muted). None for this
# long means it is gone, even if ICE consent checks (about 30 s) have not noticed yet.
MEDIA_TIMEOUT_SECONDS = 15.0


def webrtc_available() -> bool:
    if not settings.WEBRTC_ENABLED:
        return False
    try:
        import aiortc  # noqa: F401
    except ImportError:
        return False
    return True


def ice_servers() -> list[dict]:
    """The STUN/TURN servers both peers use (RTCPeerConnection's `iceServers` shape)."""
    servers = []
    for url in settings.WEBRTC_ICE_SERVERS:
        server: dict = {"urls": [url]}
        if url.startswith(("turn:", "turns:")):
            server["username"] = settings.WEBRTC_TURN_USERNAME
            server["credential"] = settings.WEBRTC_TURN_CREDENTIAL
        servers.append(server)
    return servers


def _restrict_host_addresses() -> None:
    """Let aioice gather only the configured host addresses (e.g. loopback in tests, or the
    public interface of a server with several). aioice has no option for it."""
    addresses = list(settings.WEBRTC_HOST_ADDRESSES)
    if not addresses:
        return
    import aioice.ice

    def configured(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = configured


def _rtc_configuration():
    from aiortc import RTCConfiguration, RTCIceServer

    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in ice_servers()
        ]
    )


def _outbound_track_class():
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
    from av import AudioFrame

    class OutboundAudioTrack(MediaStreamTrack):
        """Assistant audio out, one 20 ms frame per `recv`, silence when there is none."""

        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.frames: collections.deque[bytes] = collections.deque()
            self.partial = b""
            self.played_ms = 0
            self._start: float | None = None
            self._timestamp = 0

        def enqueue(self, pcm: bytes) -> None:
            data = self.partial + pcm
            whole = len(data) - len(data) % FRAME_BYTES
            for i in range(0, whole, FRAME_BYTES):
                self.frames.append(data[i : i + FRAME_BYTES])
            self.partial = data[whole:]

        def flush(self) -> None:
            self.frames.clear()
            self.partial = b""

        async def recv(self):
            if self.readyState != "live":
                raise MediaStreamError
            if self._start is None:
                self._start = time.monotonic()
            else:
                self._timestamp += FRAME_SAMPLES
                wait = self._start + self._timestamp / SAMPLE_RATE - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            if self.frames:
                pcm = self.frames.popleft()
                self.played_ms += FRAME_MS
            else:
                pcm = bytes(FRAME_BYTES)
            frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
            frame.planes[0].update(pcm)
            frame.pts = self._timestamp
            frame.sample_rate = SAMPLE_RATE
            frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
            return frame

    return OutboundAudioTrack


class CallPeer:
    """One call's server peer: answer an offer, hand incoming audio on, play outgoing audio."""

    def __init__(
        self,
        *,
        on_audio: Callable[[bytes], None],
        on_state: Callable[[str], Awaitable[None]],
    ) -> None:
        _restrict_host_addresses()
        from aiortc import RTCPeerConnection

        self.on_audio = on_audio
        self.on_state = on_state
        self.pc = RTCPeerConnection(_rtc_configuration())
        self.outbound = _outbound_track_class()()
        self.pc.addTrack(self.outbound)
        self.reader: asyncio.Task | None = None
        self.watchdog: asyncio.Task | None = None
        self.timeout_report: asyncio.Task | None = None
        self.last_audio_at = time.monotonic()
        self.closed = False

        @self.pc.on("track")
        def on_track(track) -> None:
            if track.kind == "audio" and self.reader is None:
                self.reader = asyncio.create_task(self._read(track), name="webrtc-inbound")

        @self.pc.on("connectionstatechange")
        async def on_connection_state() -> None:
            await self.on_state(self.pc.connectionState)

    @property
    def state(self) -> str:
        return self.pc.connectionState

    async def answer(self, offer_sdp: str) -> str:
        """Take the browser's complete offer; return the answer with all our candidates."""
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self.last_audio_at = time.monotonic()
        self.watchdog = asyncio.create_task(self._watch_media(), name="webrtc-watchdog")
        return self.pc.localDescription.sdp

    async def _watch_media(self) -> None:
        while not self.closed:
            await asyncio.sleep(min(1.0, MEDIA_TIMEOUT_SECONDS / 3))
            if time.monotonic() - self.last_audio_at > MEDIA_TIMEOUT_SECONDS:
                # Reported from a task of its own: ending the call closes this peer, which
                # cancels the watchdog, and must not wait on itself.
                self.timeout_report = asyncio.create_task(
                    self.on_state("media_timeout"), name="webrtc-media-timeout"
                )
                return

    async def _read(self, track) -> None:
        import av
        from aiortc.mediastreams import MediaStreamError

        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        while True:
            try:
                frame = await track.recv()
            except (MediaStreamError, asyncio.CancelledError):
                return
            self.last_audio_at = time.monotonic()
            for out in resampler.resample(frame):
                self.on_audio(bytes(out.planes[0])[: out.samples * 2])

    async def close(self) -> None:
        """Release the peer, its tracks and tasks (idempotent)."""
        if self.closed:
            return
        self.closed = True
        current = asyncio.current_task()
        for task in (self.reader, self.watchdog):
            if task is not None and task is not current:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self.outbound.stop()
        with contextlib.suppress(Exception):
            await self.pc.close()
