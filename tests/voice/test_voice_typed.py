"""Typed user turns (`Session.push_text`): answered like spoken ones, without speech-to-text."""

from __future__ import annotations

import asyncio

from conftest import FakeBrain, FakeStt, FakeTts, fast_config, feed, quiet, tone

from voice.events import (
    AssistantSpeechStarted,
    AssistantSpeechStopped,
    CallEnded,
    Interruption,
    Transcript,
    TurnTimings,
)


def finals(rec, role: str) -> list[Transcript]:
    return [t for t in rec.of(Transcript) if t.role == role and t.final]


async def test_typed_text_is_a_user_turn_answered_aloud(make_session):
    stt = FakeStt(["never used"])
    session, rec = await make_session(stt=stt)
    await rec.wait_type(AssistantSpeechStopped)
    assert session.push_text("  what are   your hours?\n") is True
    timings = await rec.wait_type(TurnTimings)
    user = finals(rec, "user")
    assert [(t.text, t.typed) for t in user] == [("what are your hours?", True)]
    assert finals(rec, "assistant")[-1].text == "You said: what are your hours?."
    started = [e.turn for e in rec.of(AssistantSpeechStarted)]
    assert started[-1] == timings.turn
    assert stt.calls == []  # no speech-to-text for typed text
    assert timings.endpoint_silence_ms == 0
    assert timings.endpoint_ms is None and timings.transcript_ms is None
    assert timings.first_text_ms is not None and timings.first_audio_ms is not None
    assert session.history[-2:] == [
        {"role": "user", "content": "what are your hours?"},
        {"role": "assistant", "content": "You said: what are your hours?."},
    ]


async def test_the_typed_line_comes_before_the_reply(make_session):
    session, rec = await make_session()
    await rec.wait_type(AssistantSpeechStopped)
    session.push_text("hi")
    await rec.wait_type(TurnTimings)
    events = [e for e in rec.events if isinstance(e, Transcript | AssistantSpeechStarted)]
    user_at = next(i for i, e in enumerate(events) if getattr(e, "role", "") == "user")
    assert isinstance(events[user_at + 1], AssistantSpeechStarted)


async def test_spoken_lines_are_not_marked_typed(make_session):
    session, rec = await make_session(stt=FakeStt(["spoken"]))
    await rec.wait_type(AssistantSpeechStopped)
    await feed(session, tone(400) + quiet(500))
    await rec.wait_type(TurnTimings)
    assert [(t.text, t.typed) for t in finals(rec, "user")] == [("spoken", False)]


async def test_blank_text_is_refused_and_changes_nothing(make_session):
    session, rec = await make_session()
    await rec.wait_type(AssistantSpeechStopped)
    before = list(rec.events)
    assert session.push_text("") is False
    assert session.push_text(" \n\t ") is False
    await asyncio.sleep(0.05)
    assert rec.events == before


async def test_typed_text_interrupts_the_assistant_keeping_what_was_heard(make_session):
    config = fast_config(
        pace_audio=True,
        playout_lead_ms=100,
        first_message="one two three four five six seven eight nine ten.",
    )
    session, rec = await make_session(config, tts=FakeTts(ms_per_word=200))
    greeting = await rec.wait_type(AssistantSpeechStarted)
    await asyncio.sleep(0.5)
    session.report_played(400)  # two words of ~2 s
    assert session.push_text("stop please")
    interruption = await rec.wait_type(Interruption)
    assert interruption.turn == greeting.turn and interruption.heard_text == "one two"
    stopped = await rec.wait_type(AssistantSpeechStopped, turn=greeting.turn)
    assert stopped.interrupted
    await rec.wait_for(
        lambda e: isinstance(e, AssistantSpeechStopped) and e.turn != greeting.turn, within=10
    )
    assistant = finals(rec, "assistant")
    assert assistant[0].text == "one two" and assistant[0].interrupted
    assert assistant[-1].text == "You said: stop please."
    assert session.history == [
        {"role": "assistant", "content": "one two"},
        {"role": "user", "content": "stop please"},
        {"role": "assistant", "content": "You said: stop please."},
    ]


async def test_text_typed_before_the_reply_plays_is_answered_together(make_session):
    brain = FakeBrain(delay=0.3)
    session, rec = await make_session(brain=brain)
    await rec.wait_type(AssistantSpeechStopped)
    session.push_text("first")
    await asyncio.sleep(0.05)  # the first reply is being prepared, not heard yet
    session.push_text("second")
    await rec.wait_type(TurnTimings)
    assert [r.user_text for r in brain.requests] == ["first", "first second"]
    assert finals(rec, "assistant")[-1].text == "You said: first second."
    assert session.history[-2] == {"role": "user", "content": "first second"}


async def test_typing_resets_the_silence_timeout(make_session):
    config = fast_config(silence_timeout_seconds=0.3, silence_prompt="")
    session, rec = await make_session(config)
    await rec.wait_type(AssistantSpeechStopped)
    await asyncio.sleep(0.2)
    session.push_text("still here")
    await rec.wait_type(TurnTimings)
    assert not rec.of(CallEnded)
    assert (await rec.ended(within=3)).reason == "silence_timeout"


async def test_no_typed_turn_during_the_goodbye_or_after_the_end(make_session):
    session, rec = await make_session(fast_config(goodbye_message="Bye now."))
    await rec.wait_type(AssistantSpeechStopped)
    assert session.say_goodbye("api_end")
    assert session.push_text("wait") is False
    assert (await rec.ended()).reason == "api_end"
    assert session.push_text("hello?") is False
    assert finals(rec, "user") == []
