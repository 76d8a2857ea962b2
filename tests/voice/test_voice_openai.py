"""The OpenAI-compatible providers against a fake server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest
from conftest import FakeBrain, FakeStt, FakeTts, FakeVad, fast_config, feed, quiet, tone
from fake_openai import FakeOpenAi, end_call_chunk, respond, stream_sse, text_chunk, wav_bytes

from voice.events import CallEnded, Error, Transcript
from voice.providers.base import BrainRequest, ProviderError
from voice.providers.brain_openai import OpenAiBrain
from voice.providers.stt_openai import OpenAiStt
from voice.providers.tts_openai import OpenAiTts
from voice.session import Session

KEY = "sk-test-secret-123"


def local(server: FakeOpenAi) -> dict:
    """The fake server is on 127.0.0.1: an operator's local endpoint (allow_private)."""
    return {"base_url": server.base_url, "allow_private": True}


def request(**changes) -> BrainRequest:
    values = dict(
        user_text="What time is it?",
        history=[{"role": "assistant", "content": "Hello {{name}}"}],
        system_prompt="You help {{name}}.",
        variables={"name": "Ann"},
        goodbye_message="Bye {{name}}!",
    )
    values.update(changes)
    return BrainRequest(**values)


async def collect(brain: OpenAiBrain, req: BrainRequest):
    return [part async for part in brain.reply(req)]


async def test_chat_streams_text_and_the_end_call_tool():
    async def chat(req, writer):
        await stream_sse(writer, [text_chunk("It is "), text_chunk("noon. Bye."), end_call_chunk()])

    async with FakeOpenAi({"/v1/chat/completions": chat}) as server:
        brain = OpenAiBrain(**local(server), api_key=KEY, model="m1")
        parts = await collect(brain, request())
    assert "".join(p.text for p in parts) == "It is noon. Bye."
    assert parts[-1].end_call and not any(p.end_call for p in parts[:-1])
    sent = server.requests[0]
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    body = sent.json()
    assert body["model"] == "m1" and body["stream"] is True
    assert body["tools"][0]["function"]["name"] == "end_call"
    messages = body["messages"]
    assert messages[0]["role"] == "system" and "You help Ann." in messages[0]["content"]
    assert "name: Ann" in messages[0]["content"]
    assert messages[1:] == [
        {"role": "assistant", "content": "Hello {{name}}"},
        {"role": "user", "content": "What time is it?"},
    ]


async def test_end_call_without_words_says_the_goodbye_line():
    async def chat(req, writer):
        await stream_sse(writer, [end_call_chunk()])

    async with FakeOpenAi({"/v1/chat/completions": chat}) as server:
        parts = await collect(OpenAiBrain(**local(server)), request())
    assert parts[-1].text == "Bye Ann!" and parts[-1].end_call


async def test_chat_error_status_is_a_generic_error_and_the_status_is_logged(caplog):
    async def chat(req, writer):
        await respond(writer, 401, json.dumps({"error": {"message": "bad key"}}).encode())

    async with FakeOpenAi({"/v1/chat/completions": chat}) as server:
        brain = OpenAiBrain(**local(server), api_key=KEY, endpoint="local")
        with pytest.raises(ProviderError) as caught:
            await collect(brain, request())
    assert str(caught.value) == "The chat service returned an error."
    assert KEY not in repr(brain.endpoint)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "HTTP 401" in logged and "'local'" in logged
    assert "bad key" not in logged and KEY not in logged


async def test_chat_timeout_is_an_error_not_a_hang():
    async def chat(req, writer):
        await asyncio.sleep(3)

    async with FakeOpenAi({"/v1/chat/completions": chat}) as server:
        brain = OpenAiBrain(**local(server), timeout=0.3)
        with pytest.raises(ProviderError, match="^The chat service timed out.$"):
            await asyncio.wait_for(collect(brain, request()), 2)


async def test_session_with_streaming_chat_ends_the_call_on_end_call():
    async def chat(req, writer):
        await stream_sse(
            writer,
            [text_chunk("Sure, "), text_chunk("goodbye "), text_chunk("Ann."), end_call_chunk()],
            gap=0.01,
        )

    async with FakeOpenAi({"/v1/chat/completions": chat}) as server:
        brain = OpenAiBrain(**local(server), api_key=KEY)
        providers = {
            "vad": FakeVad(),
            "stt": FakeStt(["bye now"]),
            "brain": brain,
            "tts": FakeTts(),
        }
        session = Session(fast_config(first_message=""), providers=providers)
        events = []

        async def pump():
            async for event in session.events():
                events.append(event)

        task = asyncio.create_task(pump())
        await session.start()
        await feed(session, tone(300) + quiet(400))
        await asyncio.wait_for(task, 5)
        await providers["tts"].aclose()
    assert events[-1] == CallEnded(reason="assistant_ended")
    spoken = [
        e.text for e in events if isinstance(e, Transcript) and e.role == "assistant" and e.final
    ]
    assert spoken == ["Sure, goodbye Ann."]
    assert server.requests[0].json()["messages"][-1] == {"role": "user", "content": "bye now"}


async def test_transcription_posts_wav_and_returns_text():
    async def transcribe(req, writer):
        await respond(writer, 200, b'{"text": " hello there "}')

    async with FakeOpenAi({"/v1/audio/transcriptions": transcribe}) as server:
        stt = OpenAiStt(**local(server), api_key=KEY, model="whisper-x")
        text = await stt.transcribe(tone(500), "en")
    assert text == "hello there"
    body = server.requests[0].body
    assert b"RIFF" in body and b"whisper-x" in body and b'name="language"' in body


async def test_transcription_error_and_timeout():
    async def broken(req, writer):
        await respond(writer, 500, b"upstream exploded")

    async def slow(req, writer):
        await asyncio.sleep(3)

    async with FakeOpenAi({"/v1/audio/transcriptions": broken}) as server:
        with pytest.raises(ProviderError) as caught:
            await OpenAiStt(**local(server)).transcribe(tone(100), "en")
    assert str(caught.value) == "The transcription service returned an error."
    async with FakeOpenAi({"/v1/audio/transcriptions": slow}) as server:
        with pytest.raises(ProviderError, match="^The transcription service timed out.$"):
            await OpenAiStt(**local(server), timeout=0.3).transcribe(tone(100), "en")


@pytest.mark.parametrize("response_format", ["wav", "pcm"])
async def test_speech_returns_16k_pcm(response_format):
    async def speech(req, writer):
        wav = wav_bytes(0.5)
        body = wav if req.json()["response_format"] == "wav" else wav[44:]
        await respond(writer, 200, body, "audio/wav")

    async with FakeOpenAi({"/v1/audio/speech": speech}) as server:
        tts = OpenAiTts(**local(server), voice="nova", response_format=response_format)
        pcm = await tts.synthesize("Hello.")
    assert abs(len(pcm) - 16000) <= 64  # 0.5 s at 16 kHz, 2 bytes a sample
    assert server.requests[0].json()["voice"] == "nova"


async def test_speech_error_status():
    async def speech(req, writer):
        await respond(writer, 429, b'{"error": "slow down"}')

    async with FakeOpenAi({"/v1/audio/speech": speech}) as server:
        with pytest.raises(ProviderError, match="^The speech service returned an error.$"):
            await OpenAiTts(**local(server)).synthesize("Hi.")


# --- every request goes through netguard; callers see generic errors ---


async def test_an_endpoint_on_a_private_address_needs_allow_private_and_is_never_contacted():
    async with FakeOpenAi(
        {"/v1/audio/speech": lambda req, writer: respond(writer, 200, b"")}
    ) as server:
        with pytest.raises(ProviderError, match="^The speech service is unavailable.$"):
            OpenAiTts(base_url=server.base_url)  # 127.0.0.1 without allow_private
    assert server.requests == []


async def test_a_name_resolving_to_a_private_address_is_refused_at_request_time(
    monkeypatch, caplog
):
    real = socket.getaddrinfo

    def fake_dns(host, port, *args, **kwargs):
        if host == "speech.internal.test":  # a public-looking name, a loopback answer
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake_dns)

    async def speech(req, writer):
        await respond(writer, 200, wav_bytes(0.1), "audio/wav")

    async with FakeOpenAi({"/v1/audio/speech": speech}) as server:
        port = server.base_url.split(":")[2].split("/")[0]
        tts = OpenAiTts(base_url=f"http://speech.internal.test:{port}/v1", endpoint="lan")
        with pytest.raises(ProviderError, match="^The speech service is unavailable.$"):
            await tts.synthesize("Hello.")
    assert server.requests == []
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "'lan'" in logged and "loopback" in logged


async def test_the_remote_error_body_reaches_neither_the_caller_nor_the_log(caplog):
    page = b"<h1>Internal admin</h1> db_password=hunter2"

    async def speech(req, writer):
        await respond(writer, 500, page, "text/html")

    async with FakeOpenAi({"/v1/audio/speech": speech}) as server:
        tts = OpenAiTts(**local(server), api_key=KEY)
        session = Session(
            fast_config(first_message="Hello."),
            providers={"vad": FakeVad(), "stt": FakeStt(), "brain": FakeBrain(), "tts": tts},
        )
        events = []

        async def pump():
            async for event in session.events():
                events.append(event)

        task = asyncio.create_task(pump())
        await session.start()
        await asyncio.wait_for(task, 5)
    errors = [e for e in events if isinstance(e, Error)]
    assert errors and errors[0].stage == "tts"
    assert errors[0].message == "The speech service returned an error."
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "HTTP 500" in logged
    for text in (errors[0].message, logged):
        assert "hunter2" not in text and "Internal admin" not in text and KEY not in text


async def test_a_redirect_from_the_endpoint_is_not_followed():
    async def speech(req, writer):
        writer.write(
            b"HTTP/1.1 302 Found\r\nLocation: /v1/private\r\nContent-Length: 0\r\n"
            b"Connection: close\r\n\r\n"
        )
        await writer.drain()

    async def private(req, writer):
        await respond(writer, 200, wav_bytes(0.1), "audio/wav")

    async with FakeOpenAi({"/v1/audio/speech": speech, "/v1/private": private}) as server:
        with pytest.raises(ProviderError, match="^The speech service returned an error.$"):
            await OpenAiTts(**local(server)).synthesize("Hi.")
    assert [r.path for r in server.requests] == ["/v1/audio/speech"]


async def test_an_error_inside_the_chat_stream_is_not_shown():
    async def chat(req, writer):
        await stream_sse(writer, [text_chunk("Hi"), {"error": {"message": "internal detail"}}])

    async with FakeOpenAi({"/v1/chat/completions": chat}) as server:
        with pytest.raises(ProviderError) as caught:
            await collect(OpenAiBrain(**local(server)), request())
    assert str(caught.value) == "The chat service returned an error."


def test_extra_body_tunes_the_request_but_never_replaces_model_messages_or_stream():
    brain = OpenAiBrain(
        base_url="https://api.example/v1",
        model="m1",
        tools=False,
        extra_body={"model": "other", "stream": False, "messages": [], "tools": [1], "top_k": 3},
    )
    body = brain.body(request())
    assert body["model"] == "m1" and body["stream"] is True and len(body["messages"]) == 3
    assert "tools" not in body and body["top_k"] == 3


async def test_a_tuned_view_shares_the_endpoint_and_sends_its_own_settings():
    async def chat(req, writer):
        await stream_sse(writer, [text_chunk("Ok.")])

    async with FakeOpenAi({"/v1/chat/completions": chat}) as server:
        base = OpenAiBrain(**local(server), api_key=KEY, model="m1")
        view = base.tuned(model="m2", temperature=0.0, max_tokens=5)
        await collect(view, request())
        await collect(base, request())
    assert view.endpoint is base.endpoint
    sent = [r.json() for r in server.requests]
    assert [(b["model"], b["max_tokens"]) for b in sent] == [("m2", 5), ("m1", 300)]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.requests)
