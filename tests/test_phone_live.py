"""Phone calls end to end: a real daphne, the real job worker, the real offline speech stack
(Whisper hears espeak-ng speech), the official `twilio` SDK and the Twilio emulator on the
other side (REST, signed status callbacks, a bidirectional media stream in real time).

- Outbound: seed 000's body -> 201 -> the worker places the call through the SDK -> the
  emulator rings, answers and connects the stream -> the callee hears the greeting, asks a
  question, hears the answer and hangs up -> statuses queued, ringing, in_progress, completed
  in REST, in the events and in webhooks; a transcript with the question and the answer; a
  two-channel recording; one `call.ended`.
- Barge-in: the callee talks over a long answer; the server sends `clear`, and the stored
  assistant line keeps only what was heard (marked interrupted).
- Busy, no-answer, failed and canceled each end the call once with their status.
- Inbound: a call to the number is answered by its assistant.
- DTMF: a key with an `end_call` rule ends the call with the rule's line.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import wave
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from liveserver import start_server, wait_for  # noqa: E402

from bench._speech import have_espeak, synthesize  # noqa: E402
from tests.webhooks.receiver import Receiver  # noqa: E402
from twilio_emulator import (  # noqa: E402
    Dtmf,
    Hangup,
    Scenario,
    Silence,
    Speak,
    TwilioEmulator,
    WaitForReply,
)

pytestmark = pytest.mark.slow

PUBLIC = "https://voice.example.test"
CALLEE = "+14155552671"
OUR_NUMBER = "+14155550100"
ENV = {
    "WEBHOOK_ALLOW_HTTP": "1",
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
    "WEBHOOK_RETRY_SCHEDULE_SECONDS": "1,2,3",
    "WEBRTC_ENABLED": "0",
    "PUBLIC_BASE_URL": PUBLIC,
}
KNOWLEDGE = [
    {
        "question": "What are your opening hours?",
        "answer": "We are open from nine in the morning until five in the evening.",
    },
    {"question": "Where is the shop?", "answer": "Our shop is at twelve Harbour Street."},
]
HISTORY = (
    "We started as a small family shop many years ago. Since then we have grown a lot, "
    "and we now serve customers in many towns. We still care about every single order, "
    "and we answer every call ourselves. Thank you for asking about our long story."
)


@pytest.fixture(scope="module")
def said() -> dict[str, bytes]:
    if not have_espeak():
        pytest.skip("espeak-ng is needed to make the test speech (make test installs it)")
    return {
        "hours": synthesize("What are your opening hours?", "en-us-slow"),
        "stop": synthesize("Wait, stop, I have another question.", "en-us"),
    }


@pytest.fixture(scope="module")
def phone():
    """A server + worker, the emulator in front of it, an account, a number and an assistant
    (one for the module: the tests place their calls one after another)."""
    emulator = TwilioEmulator(default_scenario=Scenario(ring_seconds=0.3))
    server = None
    try:
        emulator.start()
        server = start_server(extra_env={**ENV, "TWILIO_API_BASE_URL": emulator.base_url})
        emulator.rewrite[PUBLIC] = f"http://127.0.0.1:{server.port}"
        server.start_worker()
        assistant = server.create_assistant(
            name="Phone desk",
            starting_message="Hello, thanks for calling.",
            knowledge=KNOWLEDGE,
            goodbye_message="Goodbye.",
            dtmf_rules={
                "#": {"action": "end_call", "text": "You pressed hash. Goodbye."},
                "1": {"action": "say", "text": HISTORY},
            },
            speech={"vad": {"provider": "silero"}, "tts": {"provider": "espeak"}},
        )
        account = server.api(
            "POST",
            "/telephony/twilio-accounts",
            {
                "name": "Emulated",
                "account_sid": emulator.account_sid,
                "auth_token": emulator.auth_token,
            },
            expect=201,
        )["data"]
        number = server.api(
            "POST",
            "/phone-numbers",
            {
                "number": OUR_NUMBER,
                "twilio_account_id": account["id"],
                "assistant_id": assistant["id"],
            },
            expect=201,
        )["data"]
        yield emulator, server, assistant, number
    finally:
        if server is not None:
            server.stop()
        emulator.stop()


def dial(server, number: dict) -> str:
    body = {"phone_purchase_id": number["id"], "phoneNumber": CALLEE, "provider": "twilio"}
    created = server.api("POST", "/calls/phone/initiate", body, expect=201)
    assert created["status"] is True and created["callId"]
    return created["callId"]


def placed(emulator, call_id: str):
    """The emulator's call for our call `call_id` (its TwiML carries the id)."""

    def find():
        for call in list(emulator.calls.values()):
            if f'value="{call_id}"' in (call.twiml or ""):
                return call
        return None

    return wait_for(find, 30, f"the emulator to get call {call_id}")


def ended_call(server, call_id: str, timeout: float = 60) -> dict:
    def done():
        data = server.api("GET", f"/calls/{call_id}", expect=200)["data"]
        return data if data["ended_at"] else None

    return wait_for(done, timeout, f"call {call_id} to end")


async def _events(server, call_id: str) -> list[dict]:
    import websockets

    url = f"ws://127.0.0.1:{server.port}/ws/calls/{call_id}?api_key={server.api_key}"
    async with websockets.connect(url) as ws:
        connected = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return connected["data"]["events"]


def statuses(events: list[dict]) -> list[str]:
    return [e["data"]["to"] for e in events if e["type"] == "call.status_changed"]


def transcript(server, call_id: str) -> list[dict]:
    return server.api("GET", f"/calls/{call_id}/transcripts", expect=200)["data"]["transcripts"]


def test_outbound_call_answers_the_question_and_ends_once(phone, said):
    emulator, server, _, number = phone
    script = [
        WaitForReply(timeout=20),  # the greeting
        Speak(said["hours"], rate=16000, label="hours"),
        WaitForReply(timeout=30),
        Hangup(),
    ]
    emulator.set_scenario(CALLEE, Scenario(ring_seconds=0.5, script=script))
    with Receiver() as receiver:
        endpoint = server.api(
            "POST",
            "/webhooks",
            {"url": receiver.url, "events": ["call.status_changed", "call.ended"]},
            expect=201,
        )["data"]
        receiver.secrets.append(endpoint["secret"])
        call_id = dial(server, number)
        emulated = placed(emulator, call_id)
        assert emulated.wait_ended(90), emulated.transcript()
        call = ended_call(server, call_id)
        assert call["status_label"] == "completed" and call["end_reason"] == "hangup", call
        assert call["type"] == "outbound_phone"
        assert (call["from_number"], call["to_number"]) == (OUR_NUMBER, CALLEE)
        # The Twilio side saw the whole life of the call, in order.
        assert emulated.statuses()[:1] == ["initiated"] and emulated.statuses()[-1] == "completed"
        lines = transcript(server, call_id)
        heard = " ".join(line["text"].lower() for line in lines if line["role"] == "user")
        said_back = [line["text"] for line in lines if line["role"] == "assistant"]
        # 8 kHz mu-law espeak is hard on Whisper ("work out your opening hours"): the reply
        # below is what shows the question was understood.
        assert "hours" in heard, lines
        assert said_back[0] == "Hello, thanks for calling.", lines
        assert any("nine in the morning" in text for text in said_back), lines
        # The recording: two channels (caller, assistant), as on the web path.
        assert call["recording_url"], call
        recording = server.var_dir / "recordings" / "recordings" / f"{call_id}.wav"
        with wave.open(str(recording)) as wav:
            assert wav.getnchannels() == 2 and wav.getnframes() > 16000
        # Statuses in order in the events, and in the webhooks; one call.ended.
        events = asyncio.run(_events(server, call_id))
        assert statuses(events) == ["ringing", "in_progress", "completed"], statuses(events)
        assert [e["type"] for e in events].count("call.ended") == 1

        def hooks():
            got = [r.json for r in receiver.received if r.status == 200 and r.verified_by]
            ended = [h for h in got if h["type"] == "call.ended"]
            return got if ended else None

        got = wait_for(hooks, 30, "the call.ended webhook")
        assert [h["data"]["to"] for h in got if h["type"] == "call.status_changed"] == [
            "ringing",
            "in_progress",
            "completed",
        ]
        assert [h["type"] for h in got].count("call.ended") == 1
    # Timing: end of the callee's question -> first media frame of the reply.
    [turn] = [t for t in emulated.turns if t.label == "hours"]
    print(f"\nphone turn: reply {turn.latency * 1000:.0f} ms after the end of the question")


def test_barge_in_sends_clear_and_keeps_only_what_was_heard(phone, said):
    """The callee presses 1 (a `say` rule with a long line: no speech recognition involved),
    then talks over it: the server sends `clear`, and the stored line is what played."""
    emulator, server, _, number = phone
    script = [
        WaitForReply(timeout=20),
        Dtmf("1"),
        Silence(2.5),  # the long line is playing
        Speak(said["stop"], rate=16000, label="stop"),
        WaitForReply(timeout=30),
        Hangup(),
    ]
    emulator.set_scenario(CALLEE, Scenario(ring_seconds=0.2, script=script))
    call_id = dial(server, number)
    emulated = placed(emulator, call_id)
    assert emulated.wait_ended(90), emulated.transcript()
    ended_call(server, call_id)
    assert emulated.stream.clears, emulated.transcript()
    lines = transcript(server, call_id)
    history = [line for line in lines if line["text"].startswith("We started")]
    assert history and history[0]["interrupted"], lines
    # What is stored is what played before the clear: far less than the whole line.
    assert len(history[0]["text"]) < len(HISTORY) * 0.8, history


@pytest.mark.parametrize("outcome", ["busy", "no-answer", "failed", "canceled"])
def test_an_unanswered_call_ends_once_with_its_status(phone, outcome):
    emulator, server, _, number = phone
    emulator.set_scenario(CALLEE, Scenario(outcome=outcome, ring_seconds=0.3))
    call_id = dial(server, number)
    placed(emulator, call_id).wait_ended(30)
    call = ended_call(server, call_id, 30)
    expected = {"busy": "busy", "no-answer": "no_answer", "failed": "failed"}
    assert call["status_label"] == expected.get(outcome, "canceled"), call
    events = asyncio.run(_events(server, call_id))
    assert [e["type"] for e in events].count("call.ended") == 1
    assert "in_progress" not in statuses(events)


def test_inbound_call_is_answered_by_the_numbers_assistant(phone, said):
    emulator, server, assistant, number = phone
    script = [WaitForReply(timeout=20), Dtmf("#"), WaitForReply(timeout=20)]
    emulated = emulator.incoming_call(
        f"{PUBLIC}/v1/telephony/twilio/voice",
        from_="+14155559999",
        to=OUR_NUMBER,
        scenario=Scenario(ring_seconds=0.0, script=script),
    )
    assert emulated.wait_ended(60), emulated.transcript()

    def inbound():
        rows = server.api("GET", "/calls?limit=5", expect=200)["data"]
        return [c for c in rows if c["type"] == "inbound_phone" and c["ended_at"]]

    [call] = wait_for(inbound, 30, "the inbound call to end")
    assert call["assistant_id"] == assistant["id"]
    assert (call["from_number"], call["to_number"]) == ("+14155559999", OUR_NUMBER)
    # The # key's rule ended the call with its line (and Twilio was told to hang up).
    said_back = [
        line["text"] for line in transcript(server, call["id"]) if line["role"] == "assistant"
    ]
    assert said_back == ["Hello, thanks for calling.", "You pressed hash. Goodbye."]
    assert call["end_reason"] == "assistant_ended"


def test_a_stream_with_a_bad_signature_is_refused_and_changes_nothing(phone):
    """The stream's handshake is signed with the account's token: a bogus signature (with the
    call's real id and token) is closed 4401 and spends nothing; the signed one then works."""
    import base64
    import urllib.parse

    import websockets
    from twilio.request_validator import RequestValidator

    emulator, server, _, number = phone
    emulator.set_scenario(CALLEE, Scenario(ring_seconds=60))  # rings; never answers here
    call_id = dial(server, number)
    twiml = placed(emulator, call_id).twiml
    params = dict(re.findall(r'<Parameter name="(\w+)" value="([^"]+)"', twiml))
    assert params["call_id"] == call_id
    stream_url = re.search(r'<Stream url="([^"]+)"', twiml).group(1)
    local = f"ws://127.0.0.1:{server.port}" + urllib.parse.urlsplit(stream_url).path
    good = RequestValidator(emulator.auth_token).compute_signature(stream_url, {})
    start = {
        "event": "start",
        "sequenceNumber": "1",
        "streamSid": "MZ" + "0" * 32,
        "start": {
            "streamSid": "MZ" + "0" * 32,
            "callSid": "CA" + "0" * 32,
            "accountSid": emulator.account_sid,
            "tracks": ["inbound"],
            "customParameters": params,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        },
    }

    async def attempt(signature: str, while_open=None) -> tuple[int | None, list[dict]]:
        headers = {"X-Twilio-Signature": signature}
        async with websockets.connect(local, additional_headers=headers) as ws:
            await ws.send(json.dumps({"event": "connected", "protocol": "Call"}))
            await ws.send(json.dumps(start))
            silence = base64.b64encode(b"\xff" * 160).decode()
            media = {"event": "media", "media": {"track": "inbound", "payload": silence}}
            received: list[dict] = []
            try:
                for _ in range(100):
                    await ws.send(json.dumps(media))
                    try:
                        received.append(json.loads(await asyncio.wait_for(ws.recv(), 0.02)))
                    except TimeoutError:
                        pass
                    if any(m.get("event") == "media" for m in received):
                        break
                if while_open is not None:
                    while_open()
            except websockets.ConnectionClosed:
                pass
            return ws.close_code, received

    code, received = asyncio.run(attempt(base64.b64encode(b"not it").decode()))
    assert code == 4401 and received == []
    detail = server.api("GET", f"/calls/{call_id}", expect=200)["data"]
    assert detail["status_label"] == "ringing" and not detail["transport"], detail
    # The real signature with the same, unspent token: the assistant greets the caller.
    seen: list[dict] = []
    code, received = asyncio.run(
        attempt(good, lambda: seen.append(server.api("GET", f"/calls/{call_id}", expect=200)))
    )
    assert any(m.get("event") == "media" for m in received), received
    detail = seen[0]["data"]
    assert detail["status_label"] == "in_progress" and detail["transport"] == "twilio", detail


def test_a_stream_handshake_without_a_signature_is_refused_before_it_opens(phone):
    """No X-Twilio-Signature at all: the WebSocket is never accepted (HTTP 403)."""
    import websockets

    _, server, _, _ = phone
    url = f"ws://127.0.0.1:{server.port}/ws/phone/twilio/stream"

    async def attempt():
        async with websockets.connect(url):
            pass

    with pytest.raises(websockets.InvalidStatus) as refused:
        asyncio.run(attempt())
    assert refused.value.response.status_code == 403
