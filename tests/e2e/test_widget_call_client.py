"""The widget's call client against the call socket protocol, in a real Chromium.

create-call goes to the real server; the socket's server side is played by Playwright
(page.route_web_socket), so these tests pin the client's half of the protocol: hello first,
20 ms PCM16 frames at 16 kHz from a 44.1 kHz context, silence while muted, assistant audio
through the jitter buffer, playback reports, flush on interruption, end, and clean failure.
"""

from __future__ import annotations

import math
import struct
import wave

import pytest
from liveserver import launch_chromium
from widgetpage import (
    MockGateway,
    debug,
    message_text,
    shadow,
    sine_frames,
    status_text,
    wait_state,
)

pytestmark = pytest.mark.browser

TONE_HZ = 440


@pytest.fixture(scope="package")
def tone_wav(tmp_path_factory):
    """A 440 Hz tone with a slow on/off envelope (so noise suppression keeps it), 48 kHz."""
    path = tmp_path_factory.mktemp("mic") / "tone.wav"
    rate = 48000
    frames = bytearray()
    for i in range(rate * 60):
        t = i / rate
        on = 1.0 if (t % 1.0) < 0.7 else 0.0
        frames += struct.pack("<h", int(on * 0.5 * 32767 * math.sin(2 * math.pi * TONE_HZ * t)))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return path


@pytest.fixture(scope="package")
def tone_browser(playwright_session, tone_wav):
    browser = launch_chromium(playwright_session, fake_mic_wav=tone_wav)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def call_page(tone_browser, daphne_server, make_widget):
    """call_page(on_text=None, **widget_fields) -> (page, gateway, probe_errors)."""
    contexts = []

    def open_(on_text=None, on_open=None, **fields):
        widget = make_widget(**fields)
        context = tone_browser.new_context()
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        gw = MockGateway(page, on_text=on_text, on_open=on_open)
        page.goto(daphne_server.demo_url(widget["id"]))
        page.wait_for_selector("voice-widget .start")
        return page, gw, errors

    yield open_
    for context in contexts:
        context.close()


def start_on_hello(gw, msg):
    if msg["type"] == "hello":
        gw.start_call()


def pcm_stats(frames: list[bytes]) -> tuple[float, float]:
    """(rms in [0, 1], zero-crossing frequency in Hz at 16 kHz) of concatenated frames."""
    data = b"".join(frames)
    samples = struct.unpack(f"<{len(data) // 2}h", data)
    if not samples:
        return 0.0, 0.0
    rms = math.sqrt(sum(s * s for s in samples) / len(samples)) / 32768
    crossings = sum(1 for a, b in zip(samples, samples[1:], strict=False) if (a < 0) != (b < 0))
    return rms, crossings / 2 / (len(samples) / 16000)


def test_microphone_frames_playback_interruption_mute_and_end(call_page):
    page, gw, errors = call_page(on_text=start_on_hello)
    page.click("voice-widget .start")
    wait_state(page, "listening")
    assert gw.texts[0] == {"type": "hello", "audio": "websocket"}
    assert page.evaluate("new AudioContext().sampleRate") == 44100  # headless: resampling needed

    # Microphone: 20 ms PCM16 frames at 16 kHz, about 50 per second, carrying the tone.
    page.wait_for_timeout(500)
    n0 = len(gw.frames)
    page.wait_for_timeout(2000)
    rate = (len(gw.frames) - n0) / 2
    assert 42 <= rate <= 58, rate
    assert {len(f) for f in gw.frames} == {640}
    loud = [f for f in gw.frames[n0:] if pcm_stats([f])[0] > 0.02]
    assert len(loud) > 20
    _, freq = pcm_stats(loud[-20:])
    assert abs(freq - TONE_HZ) < 40, freq  # resampled at the right rate

    # Assistant audio plays through the jitter buffer and is reported as heard.
    for frame in sine_frames(1.0):
        gw.send(frame)
    page.wait_for_function(
        "() => document.querySelector('voice-widget').debug.playedMs >= 950", timeout=5000
    )
    stats = debug(page)
    assert stats["peakRms"] > 0.15, stats  # a 0.3 sine has an RMS of 0.21
    page.wait_for_timeout(400)
    reports = [m["played_ms"] for m in gw.of_type("playback")]
    assert reports and reports == sorted(reports)
    assert 950 <= reports[-1] <= 1010, reports
    assert debug(page)["outputRms"] < 0.01  # silent once the burst is over

    # Interruption: buffered audio is dropped at once, and what was heard is reported.
    before = debug(page)["playedMs"]
    for frame in sine_frames(3.0):
        gw.send(frame)
    page.wait_for_function(
        f"() => document.querySelector('voice-widget').debug.playedMs >= {before + 400}"
    )
    count = len(gw.of_type("playback"))
    gw.send({"type": "interruption", "heard_text": "la la"})
    page.wait_for_function(
        f"() => document.querySelector('voice-widget').debug.outputRms === 0"
        f" && document.querySelector('voice-widget').debug.playedMs >= {before + 400}",
        timeout=3000,
    )
    page.wait_for_timeout(150)
    flushed_at = debug(page)["playedMs"]
    assert len(gw.of_type("playback")) > count
    page.wait_for_timeout(700)
    assert debug(page)["playedMs"] == flushed_at
    assert flushed_at < before + 1500, (before, flushed_at)
    assert gw.of_type("playback")[-1]["played_ms"] == flushed_at

    # Mute sends silence frames (and says so); unmute brings the microphone back.
    page.click("voice-widget .mute")
    assert gw.of_type("mute")[-1] == {"type": "mute", "muted": True}
    page.wait_for_timeout(200)
    m0 = len(gw.frames)
    page.wait_for_timeout(1000)
    muted = gw.frames[m0:]
    assert len(muted) > 30 and all(f == bytes(640) for f in muted)
    assert (
        shadow(page, "return root.querySelector('.mute').getAttribute('aria-pressed');") == "true"
    )
    page.click("voice-widget .mute")
    assert gw.of_type("mute")[-1] == {"type": "mute", "muted": False}
    page.wait_for_timeout(1500)
    assert any(pcm_stats([f])[0] > 0.02 for f in gw.frames[m0 + len(muted) :])

    # End: the client says so; the server ends the call; everything is released.
    def finish(gw_, msg):
        if msg["type"] == "end":
            gw_.send({"type": "call.ended", "reason": "hangup"})
            gw_.ws.close(code=1000)

    gw.on_text = finish
    page.click("voice-widget .end")
    wait_state(page, "ended")
    page.wait_for_function(
        "() => document.querySelector('voice-widget').debug.audioContext === 'closed'"
    )
    stats = debug(page)
    assert stats["micLive"] is False and stats["socket"] == "closed"
    assert gw.of_type("end")
    assert status_text(page) == "Call ended"
    assert not errors


def test_assistant_ends_call_then_a_new_call_can_start(call_page):
    def script(gw, msg):
        if msg["type"] == "hello":
            gw.start_call()
            gw.send({"type": "transcript", "role": "assistant", "text": "Hello", "final": False})
            gw.send(
                {"type": "transcript", "role": "assistant", "text": "Hello there!", "final": True}
            )
            gw.send({"type": "transcript", "role": "user", "text": "<b>bye</b>", "final": True})
            gw.send({"type": "call.ended", "reason": "assistant_ended"})
            gw.ws.close(code=1000)

    page, gw, errors = call_page(on_text=script)
    page.click("voice-widget .start")
    wait_state(page, "ended")
    assert "assistant ended the call" in message_text(page)
    turns = shadow(
        page, "return [...root.querySelectorAll('.transcript li')].map(l => l.textContent);"
    )
    assert turns == ["Assistant:Hello there!", "You:<b>bye</b>"]
    assert shadow(page, "return root.querySelectorAll('.transcript b').length;") == 0
    page.click("voice-widget .start")
    page.wait_for_function("() => document.querySelector('voice-widget').debug.state === 'ended'")
    assert len(gw.of_type("hello")) == 2
    assert not errors


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ({"close": 1011}, "had a problem"),
        ({"close": 4401}, "could not connect in time"),
        ({"close": 1001}, "connection to the assistant was lost"),
        ({"send": {"type": "error", "stage": "stt", "message": "boom"}}, "had a problem"),
    ],
)
def test_server_failures_end_the_call_cleanly_with_a_message(call_page, action, expected):
    def script(gw, msg):
        if msg["type"] == "hello":
            gw.start_call()
            if "send" in action:
                gw.send(action["send"])
            else:
                gw.ws.close(code=action["close"])

    page, gw, errors = call_page(on_text=script)
    page.click("voice-widget .start")
    wait_state(page, "error")
    assert expected in message_text(page)
    page.wait_for_function(
        "() => document.querySelector('voice-widget').debug.audioContext === 'closed'"
    )
    stats = debug(page)
    assert stats["micLive"] is False and stats["socket"] == "closed"
    assert shadow(page, "return root.querySelector('.start').disabled;") is False
    assert not errors


def test_microphone_denied_says_so_and_creates_no_call(daphne_server, make_widget, open_page):
    widget = make_widget()
    requests = []

    def before(page):
        page.on("request", lambda r: requests.append(r.url))

    page, probe = open_page(
        daphne_server.demo_url(widget["id"]), microphone=False, before_goto=before
    )
    page.click("voice-widget .start")
    wait_state(page, "error")
    assert "Microphone access was denied" in message_text(page)
    assert not [u for u in requests if u.endswith("/create-call")]
    assert not probe.errors


def test_create_call_refused_shows_why(call_page, daphne_server):
    page, gw, errors = call_page()
    origin = daphne_server.page_base

    def refuse(route):
        headers = {"Access-Control-Allow-Origin": origin, "Content-Type": "application/json"}
        if route.request.method == "OPTIONS":
            headers.update(
                {
                    "Access-Control-Allow-Methods": "POST",
                    "Access-Control-Allow-Headers": "content-type",
                }
            )
            route.fulfill(status=200, headers=headers, body="")
        else:
            route.fulfill(
                status=403,
                headers=headers,
                body='{"status": false, "message": "Calls from here are not allowed."}',
            )

    page.route("**/v1/widgets/create-call", refuse)
    page.click("voice-widget .start")
    wait_state(page, "error")
    assert "not allowed to start calls" in message_text(page)
    assert gw.ws is None
    assert debug(page)["micLive"] is False
    assert not errors


def offer_webrtc(reply):
    """A gateway script: offers WebRTC, answers the offer with `reply` (or not at all)."""

    def script(gw, msg):
        if msg["type"] == "webrtc.offer" and reply is not None:
            gw.send(reply)
        elif msg["type"] == "hello":
            gw.start_call()

    return script


@pytest.mark.parametrize(
    ("reply", "min_s", "max_s", "reason"),
    [
        (None, 1.4, 2.5, "no-answer"),  # data-ice-timeout-ms=1500 below
        (
            {"type": "error", "stage": "webrtc", "message": "WebRTC offer refused."},
            0,
            0.6,
            "refused",
        ),
    ],
)
def test_webrtc_offered_then_falls_back_to_websocket_audio(call_page, reply, min_s, max_s, reason):
    def config(gw):
        gw.send({"type": "webrtc.config", "ice_servers": []})

    page, gw, errors = call_page(on_text=offer_webrtc(reply), on_open=config)
    page.evaluate(
        "() => document.querySelector('voice-widget').setAttribute('data-ice-timeout-ms', '1500')"
    )
    page.click("voice-widget .start")
    wait_state(page, "listening")
    kinds = [m["type"] for m in gw.texts if m["type"] != "playback"]
    assert kinds[:2] == ["webrtc.offer", "hello"], gw.texts
    offer = gw.texts[0]["sdp"]
    assert "m=audio" in offer and "a=sendrecv" in offer and "opus" in offer.lower()
    assert gw.of_type("hello")[0] == {"type": "hello", "audio": "websocket"}
    stats = debug(page)
    assert stats["audio"] == "websocket" and stats["rtcResult"] == reason, stats
    assert min_s * 1000 <= stats["audioChosenMs"] <= max_s * 1000 + 400, stats
    # WebSocket audio runs as usual: microphone frames flow, assistant audio plays.
    page.wait_for_timeout(600)
    assert len(gw.frames) > 15 and {len(f) for f in gw.frames} == {640}
    for frame in sine_frames(0.5):
        gw.send(frame)
    page.wait_for_function(
        "() => document.querySelector('voice-widget').debug.replyStarts.length === 1", timeout=5000
    )
    stats = debug(page)
    assert stats["micStartedAt"] > 0 and stats["replyStarts"][0] > stats["micStartedAt"], stats
    assert not errors
