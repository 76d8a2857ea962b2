"""The media side against a small Media Streams server: handshake signature, start, inbound
frames, mark pacing, clear, DTMF, stop on hang-up, a server that closes, inbound calls."""

from __future__ import annotations

import base64
import threading
import time

import numpy as np
from twilio.request_validator import RequestValidator

from tests.twilio_emulator.helpers import ACCOUNT_SID, AUTH_TOKEN, stream_twiml
from twilio_emulator import Dtmf, Hangup, Scenario, Silence, Speak, TwilioEmulator, WaitForReply
from twilio_emulator.audio import mulaw_decode, mulaw_encode

EVENTS = ["initiated", "ringing", "answered", "completed"]


def tone(seconds: float, rate: int = 8000, amplitude: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 440 * t) * amplitude).astype(np.int16)


def send_audio(conn, stream_sid: str, seconds: float, chunk_ms: int = 20) -> None:
    payload = mulaw_encode(tone(seconds))
    step = 8 * chunk_ms
    for i in range(0, len(payload), step):
        chunk = base64.b64encode(payload[i : i + step]).decode()
        conn.send(_json({"event": "media", "streamSid": stream_sid, "media": {"payload": chunk}}))


def send_mark(conn, stream_sid: str, name: str) -> None:
    conn.send(_json({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}))


def _json(message) -> str:
    import json

    return json.dumps(message)


def place(client, receiver, url: str, **parameters: str):
    return client.calls.create(
        to="+15550001111",
        from_="+15550002222",
        twiml=stream_twiml(url, **parameters),
        status_callback=receiver.url + "/status",
        status_callback_event=EVENTS,
    )


def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_handshake_is_signed_and_start_describes_the_stream(
    emulator, client, receiver, stream_server
):
    server = stream_server()
    call = place(client, receiver, server.url, token="single-use-token", callId="42")
    emulated = emulator.get_call(call.sid)
    stream = emulated.wait_stream()
    wait_for(lambda: len(server.events("media")) >= 5)
    updated = client.calls(call.sid).update(status="completed")  # the server hangs up over REST
    assert updated.status == "completed"
    assert emulated.wait_ended(10)
    assert server.closed.wait(5)

    signature = server.headers[0]["x-twilio-signature"]
    assert RequestValidator(AUTH_TOKEN).validate(server.url, {}, signature)
    messages = [m for _, m in server.messages]
    assert messages[0] == {"event": "connected", "protocol": "Call", "version": "1.0.0"}
    start = messages[1]
    assert start["event"] == "start" and start["sequenceNumber"] == "1"
    assert start["streamSid"] == stream.stream_sid and stream.stream_sid.startswith("MZ")
    assert len(stream.stream_sid) == 34
    assert start["start"] == {
        "accountSid": ACCOUNT_SID,
        "streamSid": stream.stream_sid,
        "callSid": call.sid,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"token": "single-use-token", "callId": "42"},
    }
    media = [m for m in messages if m["event"] == "media"]
    assert [m["media"]["chunk"] for m in media[:3]] == ["1", "2", "3"]
    assert [m["media"]["timestamp"] for m in media[:3]] == ["0", "20", "40"]
    assert all(m["media"]["track"] == "inbound" for m in media)
    assert all(len(base64.b64decode(m["media"]["payload"])) == 160 for m in media)
    sequence = [int(m["sequenceNumber"]) for m in messages[1:]]
    assert sequence == list(range(1, len(sequence) + 1))
    assert messages[-1] == {
        "event": "stop",
        "sequenceNumber": messages[-1]["sequenceNumber"],
        "stop": {"accountSid": ACCOUNT_SID, "callSid": call.sid},
        "streamSid": stream.stream_sid,
    }
    assert emulated.statuses() == ["initiated", "ringing", "in-progress", "completed"]
    assert stream.stop_reason == "hangup" and stream.errors == []


def test_refused_handshake_ends_the_call(emulator, client, receiver, stream_server):
    server = stream_server(reject=True)
    call = place(client, receiver, server.url)
    emulated = emulator.get_call(call.sid)
    assert emulated.wait_ended(10)
    assert emulated.statuses()[-1] == "completed"
    assert any("handshake failed" in e for e in emulated.errors)
    assert server.messages == []


def test_marks_are_echoed_once_their_audio_has_played(emulator, client, receiver, stream_server):
    def behaviour(server, conn, message):
        if message["event"] == "start":
            sid = message["streamSid"]
            server.state["sent_at"] = time.monotonic()
            send_audio(conn, sid, 1.0)
            send_mark(conn, sid, "reply-1")
        elif message["event"] == "mark" and message["mark"]["name"] == "reply-1":
            send_mark(conn, message["streamSid"], "idle")  # nothing queued: echoed at once

    server = stream_server(behaviour)
    call = place(client, receiver, server.url)
    stream = emulator.get_call(call.sid).wait_stream()
    echoed_at, echo = server.first("mark")
    assert echo["mark"] == {"name": "reply-1"} and echo["streamSid"] == stream.stream_sid
    # Never before the audio queued ahead of it has played at 8000 samples/s.
    assert echoed_at - server.state["sent_at"] >= 1.0
    assert echoed_at - server.state["sent_at"] < 3.0
    wait_for(lambda: len(server.events("mark")) == 2)
    first, idle = stream.marks
    assert (first.name, first.cleared) == ("reply-1", False)
    assert 0 < first.queued_audio_s <= 1.0
    assert first.echoed_at >= stream.received_audio[0][0] + 1.0
    assert idle.name == "idle" and idle.queued_audio_s == 0 and not idle.cleared
    assert len(stream.played_pcm()) == len(stream.received_pcm()) == 2 * 8000
    assert np.array_equal(
        np.frombuffer(stream.received_pcm(), "<i2"), mulaw_decode(mulaw_encode(tone(1.0)))
    )
    client.calls(call.sid).update(status="completed")


def test_clear_drops_queued_audio_and_returns_pending_marks(
    emulator, client, receiver, stream_server
):
    def behaviour(server, conn, message):
        if message["event"] == "start":
            sid = message["streamSid"]
            send_audio(conn, sid, 3.0)
            send_mark(conn, sid, "long")

            def barge_in():
                server.state["clear_at"] = time.monotonic()
                conn.send(_json({"event": "clear", "streamSid": sid}))
                send_mark(conn, sid, "after-clear")

            threading.Timer(0.4, barge_in).start()

    server = stream_server(behaviour)
    call = place(client, receiver, server.url)
    emulated = emulator.get_call(call.sid)
    stream = emulated.wait_stream()
    echoed_at, echo = server.first("mark")
    assert echo["mark"]["name"] == "long"
    assert echoed_at - server.state["clear_at"] < 2.0  # at the clear, not after 3 s of audio
    wait_for(lambda: len(server.events("mark")) == 2)
    assert [m["mark"]["name"] for m in server.events("mark")] == ["long", "after-clear"]
    long, after = stream.marks
    assert long.cleared and not after.cleared
    (clear,) = stream.clears
    assert clear.marks == ["long"]
    played_s = len(stream.played_pcm()) / 2 / 8000
    assert 0 < played_s < 3.0
    assert abs(clear.dropped_s + played_s - 3.0) < 1e-6  # what was dropped never plays
    time.sleep(0.1)
    assert len(stream.played_pcm()) / 2 / 8000 == played_s
    client.calls(call.sid).update(status="completed")
    assert emulated.wait_ended(10)
    assert emulated.errors == []


def test_dtmf_from_the_test_and_from_the_script(emulator, client, receiver, stream_server):
    server = stream_server()
    emulator.set_scenario(
        "+15550001111", Scenario(ring_seconds=0.05, script=[Silence(0.1), Dtmf("#")])
    )
    call = place(client, receiver, server.url)
    emulated = emulator.get_call(call.sid)
    emulated.send_dtmf("5")
    wait_for(lambda: len(server.events("dtmf")) == 2)
    digits = sorted(m["dtmf"]["digit"] for m in server.events("dtmf"))
    assert digits == ["#", "5"]
    for message in server.events("dtmf"):
        assert message["dtmf"]["track"] == "inbound_track"
        assert message["streamSid"] == emulated.stream.stream_sid and "sequenceNumber" in message
    client.calls(call.sid).update(status="completed")
    assert emulated.wait_ended(10)


def test_server_closing_the_socket_completes_the_call_once(
    emulator, client, receiver, stream_server
):
    def behaviour(server, conn, message):
        if message["event"] == "media" and message["media"]["chunk"] == "5":
            conn.close()

    server = stream_server(behaviour)
    call = place(client, receiver, server.url)
    emulated = emulator.get_call(call.sid)
    assert emulated.wait_ended(10)
    assert emulated.stream.stop_reason == "server-closed"
    assert emulated.statuses() == ["initiated", "ringing", "in-progress", "completed"]
    assert server.events("stop") == []
    assert client.calls(call.sid).fetch().status == "completed"


def test_caller_script_speaks_waits_for_the_reply_and_hangs_up(
    emulator, client, receiver, stream_server
):
    speech = np.concatenate([tone(0.4, 16000), np.zeros(3200, np.int16)])  # 16 kHz, 0.2 s tail

    def behaviour(server, conn, message):
        if message["event"] != "media":
            return
        pcm = mulaw_decode(base64.b64decode(message["media"]["payload"])).astype(float)
        loud = np.sqrt(np.mean(pcm**2)) > 300
        state = server.state
        if loud:
            state["heard"], state["quiet"] = True, 0
        elif state.get("heard") and not state.get("replied"):
            state["quiet"] = state.get("quiet", 0) + 1
            if state["quiet"] == 5:  # 100 ms of silence after speech: reply
                state["replied"] = True
                send_audio(conn, message["streamSid"], 0.2)
                send_mark(conn, message["streamSid"], "reply")

    server = stream_server(behaviour)
    script = [
        Speak(speech, rate=16000, label="question"),
        WaitForReply(timeout=5, settle=0.2),
        Hangup(),
    ]
    emulator.set_scenario("+15550001111", Scenario(ring_seconds=0.05, script=script))
    call = place(client, receiver, server.url)
    emulated = emulator.get_call(call.sid)
    assert emulated.wait_ended(15)
    stream = emulated.stream
    assert stream.stop_reason == "caller-hangup"
    assert server.first("stop") and emulated.statuses()[-1] == "completed"
    (turn,) = stream.turns
    assert turn.label == "question"
    # The reply came after the end of speech (the server waited for 5 silent frames).
    assert turn.first_reply_at is not None and turn.latency > 0
    assert [m.name for m in stream.marks] == ["reply"] and stream.marks[0].echoed_at is not None
    inbound = [m for _, m in server.messages if m["event"] == "media"]
    assert len(inbound) >= 30  # 0.6 s of speech and tail, then silence while waiting
    assert "caller utterance 0 ended" in emulated.transcript()


def test_twiml_update_ends_the_stream(emulator, client, receiver, stream_server):
    server = stream_server()
    call = place(client, receiver, server.url)
    emulated = emulator.get_call(call.sid)
    emulated.wait_stream()
    client.calls(call.sid).update(twiml="<Response><Hangup/></Response>")
    assert emulated.wait_ended(10)
    assert server.first("stop") and emulated.stream.stop_reason == "redirect"
    assert emulated.statuses().count("completed") == 1


def test_inbound_call_asks_the_voice_webhook_then_streams(emulator, receiver, stream_server):
    server = stream_server()
    receiver.twiml["/voice"] = stream_twiml(server.url, number="+15550001111")
    call = emulator.incoming_call(receiver.url + "/voice", from_="+15550007777", to="+15550001111")
    stream = call.wait_stream()
    (webhook,) = receiver.at("/voice")
    form = webhook["form"]
    assert (form["CallStatus"], form["Direction"], form["From"]) == (
        "ringing",
        "inbound",
        "+15550007777",
    )
    assert RequestValidator(AUTH_TOKEN).validate(
        webhook["url"], form, webhook["headers"]["X-Twilio-Signature"]
    )
    _, start = server.first("start")
    assert start["start"]["customParameters"] == {"number": "+15550001111"}
    assert start["start"]["callSid"] == call.sid == stream.call_sid
    call.hangup()
    assert call.wait_ended(10)
    assert call.status == "completed" and server.first("stop")


def test_rewrite_signs_public_urls_and_delivers_locally(receiver, stream_server):
    server = stream_server()
    port = server.url.split(":")[2].split("/")[0]
    public = "https://voice.example.test"
    emulator = TwilioEmulator(
        {ACCOUNT_SID: AUTH_TOKEN},
        rewrite={public + "/status": receiver.url + "/status", public: f"http://127.0.0.1:{port}"},
        default_scenario=Scenario(ring_seconds=0.05),
    ).start()
    try:
        from twilio.rest import Client

        client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=emulator.http_client())
        call = client.calls.create(
            to="+15550001111",
            from_="+15550002222",
            twiml=stream_twiml("wss://voice.example.test/ws/phone/twilio/stream"),
            status_callback=public + "/status",
            status_callback_event=["answered", "completed"],
        )
        emulated = emulator.get_call(call.sid)
        emulated.wait_stream()
        signature = server.headers[0]["x-twilio-signature"]
        validator = RequestValidator(AUTH_TOKEN)
        assert validator.validate("wss://voice.example.test/ws/phone/twilio/stream", {}, signature)
        assert not validator.validate(server.url, {}, signature)
        emulated.hangup()
        assert emulated.wait_ended(10)
        for request in receiver.at("/status"):
            assert validator.validate(
                public + "/status", request["form"], request["headers"]["X-Twilio-Signature"]
            )
        assert [r["form"]["CallStatus"] for r in receiver.at("/status")] == [
            "in-progress",
            "completed",
        ]
    finally:
        emulator.stop()


def test_https_handshake_signature_option(receiver, stream_server):
    server = stream_server()
    emulator = TwilioEmulator({ACCOUNT_SID: AUTH_TOKEN}, stream_signature="https").start()
    try:
        from twilio.rest import Client

        client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=emulator.http_client())
        call = client.calls.create(
            to="+15550001111", from_="+15550002222", twiml=stream_twiml(server.url)
        )
        emulated = emulator.get_call(call.sid)
        emulated.wait_stream()
        signature = server.headers[0]["x-twilio-signature"]
        assert RequestValidator(AUTH_TOKEN).validate(
            server.url.replace("ws://", "http://"), {}, signature
        )
        emulated.hangup()
        assert emulated.wait_ended(10)
    finally:
        emulator.stop()


def test_stopping_the_emulator_hangs_up_live_calls(receiver, stream_server):
    from twilio.rest import Client

    server = stream_server()
    emulator = TwilioEmulator(
        {ACCOUNT_SID: AUTH_TOKEN}, default_scenario=Scenario(ring_seconds=0.05)
    )
    emulator.start()
    client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=emulator.http_client())
    call = place(client, receiver, server.url)
    emulated = emulator.get_call(call.sid)
    emulated.wait_stream()
    emulator.stop()
    assert emulated.ended.is_set() and emulated.status == "completed"
    assert server.first("stop") and emulated.stream.stop_reason == "emulator-stopped"
    assert [r["form"]["CallStatus"] for r in receiver.at("/status")][-1] == "completed"
