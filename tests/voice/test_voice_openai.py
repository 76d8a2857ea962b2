"""The OpenAI-compatible providers against a fake server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pytest
from conftest import FakeStt, FakeTts, FakeVad, fast_config, feed, quiet, tone
from fake_openai import FakeOpenAi, end_call_chunk, respond, stream_sse, text_chunk, wav_bytes

from voice.events import CallEnded, Transcript
from voice.providers.base import BrainRequest, ProviderError
from voice.providers.brain_openai import OpenAiBrain
from voice.providers.stt_openai import OpenAiStt
from voice.providers.tts_openai import OpenAiTts
from voice.session import Session

KEY = "sk-test-secret-123"


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
        brain = OpenAiBrain(base_url=server.base_url, api_key=KEY, model="m1")
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
        parts = await collect(OpenAiBrain(base_url=server.base_url), request())
    assert parts[-1].text == "Bye Ann!" and parts[-1].end_call


async def test_chat_error_status_is_a_clear_error_without_the_key():
    async def chat(req, writer):
        await respond(writer, 401, json.dumps({"error": {"message": "bad key"}}).encode())

    async with FakeOpenAi({"/v1/chat/completions": chat}) as server:
        brain = OpenAiBrain(base_url=server.base_url, api_key=KEY)
        with pytest.raises(ProviderError) as caught:
            await collect(brain, request())
    assert "HTTP 401" in str(caught.value) and "bad key" in str(caught.value)
    assert KEY not in str(caught.value) and KEY not in repr(brain.endpoint)


async def test_chat_timeout_is_an_error_not_a_hang():
    async def chat(req, writer):
        await asyncio.sleep(3)

    async with FakeOpenAi({"/v1/chat/completions": chat}) as server:
        brain = OpenAiBrain(base_url=server.base_url, timeout=0.3)
        with pytest.raises(ProviderError, match="timed out"):
            await asyncio.wait_for(collect(brain, request()), 2)


async def test_session_with_streaming_chat_ends_the_call_on_end_call():
    async def chat(req, writer):
        await stream_sse(
            writer,
            [text_chunk("Sure, "), text_chunk("goodbye "), text_chunk("Ann."), end_call_chunk()],
            gap=0.01,
        )

    async with FakeOpenAi({"/v1/chat/completions": chat}) as server:
        brain = OpenAiBrain(base_url=server.base_url, api_key=KEY)
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
        stt = OpenAiStt(base_url=server.base_url, api_key=KEY, model="whisper-x")
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
        with pytest.raises(ProviderError, match="HTTP 500: upstream exploded"):
            await OpenAiStt(base_url=server.base_url).transcribe(tone(100), "en")
    async with FakeOpenAi({"/v1/audio/transcriptions": slow}) as server:
        with pytest.raises(ProviderError, match="timed out"):
            await OpenAiStt(base_url=server.base_url, timeout=0.3).transcribe(tone(100), "en")


@pytest.mark.parametrize("response_format", ["wav", "pcm"])
async def test_speech_returns_16k_pcm(response_format):
    async def speech(req, writer):
        wav = wav_bytes(0.5)
        body = wav if req.json()["response_format"] == "wav" else wav[44:]
        await respond(writer, 200, body, "audio/wav")

    async with FakeOpenAi({"/v1/audio/speech": speech}) as server:
        tts = OpenAiTts(base_url=server.base_url, voice="nova", response_format=response_format)
        pcm = await tts.synthesize("Hello.")
    assert abs(len(pcm) - 16000) <= 64  # 0.5 s at 16 kHz, 2 bytes a sample
    assert server.requests[0].json()["voice"] == "nova"


async def test_speech_error_status():
    async def speech(req, writer):
        await respond(writer, 429, b'{"error": "slow down"}')

    async with FakeOpenAi({"/v1/audio/speech": speech}) as server:
        with pytest.raises(ProviderError, match="HTTP 429"):
            await OpenAiTts(base_url=server.base_url).synthesize("Hi.")
