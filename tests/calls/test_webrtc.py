"""WebRTC with a Python aiortc client peer (no browser), on loopback only, with the real
offline speech stack: real speech in, the assistant's answer out, the transcript stored, and
the server peer with its tracks and tasks gone after each way a call can end."""

from __future__ import annotations

import asyncio
import fractions
import gc
import json

import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from accounts.models import Organization
from assistants.services import assistant_create
from bench._speech import synthesize
from calls import services, webrtc
from calls.models import Call, CallStatus
from calls.webrtc import CallPeer
from widgetsite.routing import websocket_urlpatterns

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

APP = URLRouter(websocket_urlpatterns)
QUESTION = "What are your opening hours?"
ANSWER = "We are open from nine to six, Monday to Saturday."


@pytest.fixture(autouse=True)
def loopback_webrtc(settings, tmp_path):
    settings.WEBRTC_ENABLED = True
    settings.WEBRTC_ICE_SERVERS = []
    settings.WEBRTC_HOST_ADDRESSES = ["127.0.0.1"]
    settings.MEDIA_ROOT = tmp_path
    settings.VOICE_PROVIDERS_FACTORY = None


class PcmTrack(MediaStreamTrack):
    """A microphone stand-in: plays 16 kHz PCM once in real time, then silence."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.pending = b""
        self.timestamp = 0
        self.start = None

    def play(self, pcm: bytes) -> None:
        self.pending += pcm

    async def recv(self):
        loop = asyncio.get_running_loop()
        if self.start is None:
            self.start = loop.time()
        else:
            self.timestamp += 320
            await asyncio.sleep(max(0, self.start + self.timestamp / 16000 - loop.time()))
        chunk, self.pending = self.pending[:640], self.pending[640:]
        frame = AudioFrame(format="s16", layout="mono", samples=320)
        frame.planes[0].update(chunk.ljust(640, b"\0"))
        frame.pts, frame.sample_rate, frame.time_base = (
            self.timestamp,
            16000,
            fractions.Fraction(1, 16000),
        )
        return frame


async def drain_energy(track, energy: list[float]) -> None:
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        samples = frame.to_ndarray().astype(np.float64)
        energy.append(float(np.sqrt(np.mean(samples**2))))


def make_call():
    org = Organization.objects.create(name=f"webrtc-{Organization.objects.count()}")
    assistant = assistant_create(
        organization=org,
        data={
            "name": "Shop",
            "system_prompt": "Help.",
            "starting_message": "Hello, ask me anything.",
            "knowledge": [{"question": QUESTION, "answer": ANSWER}],
            "speech": {"tts": {"provider": "espeak", "options": {}}},
        },
    )
    return services.call_create(organization=org, assistant=assistant)


async def messages_until(communicator, predicate, timeout=30.0):  # noqa: ASYNC109
    seen = []
    async with asyncio.timeout(timeout):
        while True:
            output = await communicator.receive_output(timeout=timeout)
            if output["type"] == "websocket.close":
                seen.append({"type": "__closed__", "code": output.get("code")})
                return seen
            if output.get("text"):
                seen.append(json.loads(output["text"]))
                if predicate(seen[-1]):
                    return seen


async def connect_peer(communicator):
    """Negotiate over the call socket the way the widget does (complete offer, no trickle)."""
    config = json.loads(await communicator.receive_from())
    assert config == {"type": "webrtc.config", "enabled": True, "ice_servers": []}
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    microphone = PcmTrack()
    pc.addTrack(microphone)
    energy: list[float] = []
    tasks = []

    @pc.on("track")
    def on_track(track):
        tasks.append(asyncio.create_task(drain_energy(track, energy)))

    await pc.setLocalDescription(await pc.createOffer())
    await communicator.send_json_to({"type": "webrtc.offer", "sdp": pc.localDescription.sdp})
    answer = json.loads(await communicator.receive_from(timeout=10))
    assert answer["type"] == "webrtc.answer"
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    connected = asyncio.Event()
    pc.on(
        "connectionstatechange",
        lambda: connected.set() if pc.connectionState == "connected" else None,
    )
    if pc.connectionState != "connected":
        await asyncio.wait_for(connected.wait(), 10)
    return pc, microphone, energy, tasks


async def open_call():
    call, token = await database_sync_to_async(make_call)()
    path = (
        f"/new-web-call/connection?assistant_id={call.assistant_id}&call_id={call.id}&token={token}"
    )
    communicator = WebsocketCommunicator(APP, path)
    connected, _ = await communicator.connect()
    assert connected
    return call, communicator


def live_peers() -> list:
    """Server peers not closed, and their inbound reader tasks still running."""
    gc.collect()
    # type() rather than isinstance(): gc also holds dead weak proxies that raise on access.
    peers = [o for o in gc.get_objects() if type(o) is CallPeer]
    open_peers = [p for p in peers if not p.closed or p.pc.connectionState != "closed"]
    readers = [
        t
        for t in asyncio.all_tasks()
        if t.get_name() in ("webrtc-inbound", "webrtc-watchdog") and not t.done()
    ]
    return open_peers + readers


async def test_webrtc_call_hears_the_question_speaks_the_answer_and_stores_the_transcript(tmp_path):
    question = synthesize(QUESTION)
    call, communicator = await open_call()
    pc, microphone, energy, tasks = await connect_peer(communicator)
    await communicator.send_json_to({"type": "hello", "audio": "webrtc"})
    seen = await messages_until(
        communicator,
        lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"],
    )
    assert next(m for m in seen if m["type"] == "call.started")["audio"] == "webrtc"
    assert max(energy) > 300, "the greeting arrived as audio on the client's track"

    microphone.play(question + bytes(16000 * 2))
    seen = await messages_until(
        communicator,
        lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"],
        timeout=60,
    )
    user = [
        m["text"].lower()
        for m in seen
        if m["type"] == "transcript" and m["role"] == "user" and m["final"]
    ]
    assert user and "opening hours" in user[-1]
    assert "nine" in seen[-1]["text"].lower()
    await communicator.send_json_to({"type": "end"})
    await messages_until(communicator, lambda m: m["type"] == "call.ended")
    await communicator.wait()
    await pc.close()
    for task in tasks:
        task.cancel()

    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.COMPLETED and refreshed.transport == "webrtc"
    texts = [t async for t in refreshed.transcript.order_by("seq").values_list("text", flat=True)]
    assert any("opening hours" in t.lower() for t in texts) and any(
        "nine" in t.lower() for t in texts
    )
    assert live_peers() == []


async def test_peer_is_released_when_the_browser_vanishes_from_the_socket(tmp_path):
    call, communicator = await open_call()
    pc, _, _, tasks = await connect_peer(communicator)
    await communicator.send_json_to({"type": "hello", "audio": "webrtc"})
    await messages_until(communicator, lambda m: m["type"] == "call.started")
    await communicator.disconnect()
    await pc.close()
    for task in tasks:
        task.cancel()
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.COMPLETED and refreshed.end_reason == "client_gone"
    assert live_peers() == []


async def test_peer_closing_ends_the_call_with_connection_lost(tmp_path):
    call, communicator = await open_call()
    pc, _, _, tasks = await connect_peer(communicator)
    await communicator.send_json_to({"type": "hello", "audio": "webrtc"})
    await messages_until(communicator, lambda m: m["type"] == "call.started")
    await pc.close()  # the browser's peer goes away; the socket stays
    seen = await messages_until(communicator, lambda m: m["type"] == "call.ended", timeout=40)
    assert seen[-1]["reason"] == "connection_lost"
    await communicator.wait()
    for task in tasks:
        task.cancel()
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.COMPLETED and refreshed.end_reason == "connection_lost"
    assert live_peers() == []


async def test_browser_that_vanishes_without_closing_ends_the_call_on_media_timeout(monkeypatch):
    # A browser that is just gone sends no more media (and no DTLS close); the server notices
    # after MEDIA_TIMEOUT_SECONDS (15 s in production; shortened here).
    monkeypatch.setattr(webrtc, "MEDIA_TIMEOUT_SECONDS", 2.0)
    call, communicator = await open_call()
    pc, microphone, _, tasks = await connect_peer(communicator)
    await communicator.send_json_to({"type": "hello", "audio": "webrtc"})
    await messages_until(communicator, lambda m: m["type"] == "call.started")
    for transceiver in pc.getTransceivers():
        await transceiver.sender.stop()  # no more RTP; ICE and DTLS stay up
    seen = await messages_until(communicator, lambda m: m["type"] == "call.ended", timeout=20)
    assert seen[-1]["reason"] == "connection_lost"
    await communicator.wait()
    await pc.close()
    for task in tasks:
        task.cancel()
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.COMPLETED and refreshed.end_reason == "connection_lost"
    assert live_peers() == []


async def test_falling_back_to_websocket_audio_releases_the_peer_and_records_the_transport(
    tmp_path,
):
    call, communicator = await open_call()
    config = json.loads(await communicator.receive_from())
    assert config["type"] == "webrtc.config"
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(PcmTrack())
    await pc.setLocalDescription(await pc.createOffer())
    await communicator.send_json_to({"type": "webrtc.offer", "sdp": pc.localDescription.sdp})
    assert json.loads(await communicator.receive_from(timeout=10))["type"] == "webrtc.answer"
    # ICE "never connects" from the client's point of view: it gives up and uses the socket.
    await pc.close()
    await communicator.send_json_to({"type": "hello", "audio": "websocket"})
    seen = await messages_until(communicator, lambda m: m["type"] == "call.started")
    assert seen[-1]["audio"] == "websocket"
    assert live_peers() == []
    await communicator.send_json_to({"type": "end"})
    await messages_until(communicator, lambda m: m["type"] == "call.ended")
    await communicator.wait()
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.transport == "websocket" and refreshed.status == CallStatus.COMPLETED


async def test_webrtc_is_not_offered_when_disabled(settings):
    settings.WEBRTC_ENABLED = False
    call, communicator = await open_call()
    config = json.loads(await communicator.receive_from())
    assert config == {"type": "webrtc.config", "enabled": False, "ice_servers": []}
    await communicator.send_json_to({"type": "webrtc.offer", "sdp": "v=0"})
    refusal = json.loads(await communicator.receive_from())
    assert refusal == {"type": "error", "stage": "webrtc", "message": "WebRTC offer refused."}
    await communicator.disconnect()
    assert live_peers() == []


def test_turn_servers_carry_their_credentials(settings):
    settings.WEBRTC_ICE_SERVERS = ["stun:stun.example:3478", "turn:turn.example:3478"]
    settings.WEBRTC_TURN_USERNAME, settings.WEBRTC_TURN_CREDENTIAL = "user", "pass"
    from calls.webrtc import ice_servers

    assert ice_servers() == [
        {"urls": ["stun:stun.example:3478"]},
        {"urls": ["turn:turn.example:3478"], "username": "user", "credential": "pass"},
    ]
