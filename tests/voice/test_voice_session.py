"""The session's mechanics with fake providers: fast, no models, no database."""

from __future__ import annotations

import asyncio
import threading
import wave

import pytest
from conftest import (
    FakeBrain,
    FakeStt,
    FakeTts,
    FakeVad,
    fake_providers,
    fast_config,
    feed,
    quiet,
    tone,
)

from voice.config import ProviderSpec
from voice.events import (
    AssistantSpeechStarted,
    AssistantSpeechStopped,
    AudioOut,
    CallEnded,
    CallStarted,
    Error,
    Interruption,
    Transcript,
    TurnTimings,
    UserSpeechStarted,
    UserSpeechStopped,
)
from voice.session import Session


async def answered(rec, turn_text: str | None = None) -> AssistantSpeechStopped:
    return await rec.wait_type(AssistantSpeechStopped, interrupted=False)


async def test_start_greets_with_variables_in_20ms_frames(make_session):
    session, rec = await make_session()
    await rec.wait_type(AssistantSpeechStopped)
    assert rec.types()[:3] == ["call_started", "assistant_speech_started", "transcript"]
    final = [t for t in rec.of(Transcript) if t.final]
    assert final[0].role == "assistant" and final[0].text == "Hi Ann."
    frames = rec.of(AudioOut)
    assert frames and all(len(f.pcm) == 640 for f in frames)
    assert session.history == [{"role": "assistant", "content": "Hi Ann."}]


async def test_user_turn_yields_transcript_reply_and_timings_in_order(make_session):
    stt = FakeStt(["what are your hours"])
    session, rec = await make_session(stt=stt)
    await rec.wait_type(AssistantSpeechStopped)
    await feed(session, quiet(200) + tone(600) + quiet(600))
    timings = await rec.wait_type(TurnTimings)
    types = rec.types()
    order = [
        "user_speech_started",
        "user_speech_stopped",
        "assistant_speech_started",
        "assistant_speech_stopped",
        "turn_timings",
    ]
    positions = [types.index(t, types.index("user_speech_started")) for t in order]
    assert positions == sorted(positions)
    user = next(t for t in rec.of(Transcript) if t.role == "user")
    assert user.text == "what are your hours" and user.final
    assert user.start_ms <= 200 + 20 and 780 <= user.end_ms <= 840
    assert timings.endpoint_silence_ms == 300
    for name in ("endpoint_ms", "transcript_ms", "first_text_ms", "first_audio_ms"):
        assert getattr(timings, name) is not None, name
    assert session.history[-2:] == [
        {"role": "user", "content": "what are your hours"},
        {"role": "assistant", "content": "You said: what are your hours."},
    ]


async def test_pause_starts_transcription_early_and_endpoint_keeps_it(make_session):
    stt = FakeStt(["one"])
    session, rec = await make_session(stt=stt)
    await rec.wait_type(AssistantSpeechStopped)
    await feed(session, tone(500) + quiet(150))  # past the prefetch pause, before the endpoint
    await asyncio.sleep(0.05)
    assert len(stt.calls) == 1  # speculative transcription has started
    await feed(session, quiet(400))
    await rec.wait_type(TurnTimings)
    assert len(stt.calls) == 1  # ... and its result was kept
    assert [t.text for t in rec.of(Transcript) if t.role == "user"] == ["one"]


async def test_speculative_transcript_is_dropped_when_the_user_goes_on(make_session):
    stt = FakeStt(["first half", "whole sentence"])
    brain = FakeBrain()
    session, rec = await make_session(stt=stt, brain=brain)
    await rec.wait_type(AssistantSpeechStopped)
    await feed(session, tone(400) + quiet(200) + tone(400) + quiet(500))
    await rec.wait_type(TurnTimings)
    assert len(stt.calls) == 2
    assert stt.calls[1] > stt.calls[0]  # the second transcription heard the whole utterance
    assert [t.text for t in rec.of(Transcript) if t.role == "user"] == ["whole sentence"]
    assert [t.turn for t in rec.of(AssistantSpeechStarted)][1:] == [rec.of(TurnTimings)[0].turn]
    assert len(rec.of(UserSpeechStopped)) == 1


async def test_brain_with_side_effects_waits_for_the_endpoint(make_session):
    brain = FakeBrain(speculative=False)
    session, rec = await make_session(brain=brain, stt=FakeStt(["a", "b"]))
    await rec.wait_type(AssistantSpeechStopped)
    await feed(session, tone(400) + quiet(200))
    await asyncio.sleep(0.05)
    assert brain.requests == []
    await feed(session, tone(300) + quiet(500))
    await rec.wait_type(TurnTimings)
    assert [r.user_text for r in brain.requests] == ["b"]


async def test_barge_in_stops_audio_and_history_keeps_what_was_heard(make_session):
    config = fast_config(pace_audio=True, playout_lead_ms=100, first_message="")
    brain = FakeBrain(answer=lambda _t: "one two three four five six seven eight nine ten.")
    session, rec = await make_session(config, brain=brain, tts=FakeTts(ms_per_word=200))
    await feed(session, tone(300) + quiet(400))
    started = await rec.wait_type(AssistantSpeechStarted)
    await asyncio.sleep(0.6)
    session.report_played(400)  # two words of ~2 s
    await feed(session, tone(200))
    interruption = await rec.wait_type(Interruption)
    assert interruption.turn == started.turn
    assert interruption.played_ms == 400
    assert interruption.heard_text == "one two"
    assert 0 <= interruption.stop_ms < 1000
    after = rec.events[rec.events.index(interruption) :]
    assert not [e for e in after if isinstance(e, AudioOut) and e.turn == started.turn]
    stopped = await rec.wait_type(AssistantSpeechStopped, turn=started.turn)
    assert stopped.interrupted
    assert session.history[-1] == {"role": "assistant", "content": "one two"}
    final = [t for t in rec.of(Transcript) if t.role == "assistant" and t.final]
    assert final[-1].text == "one two" and final[-1].interrupted
    timings = await rec.wait_for(lambda e: isinstance(e, TurnTimings) and e.turn == started.turn)
    assert timings.interruption_stop_ms == interruption.stop_ms


async def test_interruption_drops_audio_still_queued_for_the_transport():
    config = fast_config(pace_audio=False, first_message="")
    brain = FakeBrain(answer=lambda _t: " ".join(["word"] * 40) + ".")
    tts = FakeTts()
    session = Session(config, providers=fake_providers(brain=brain, tts=tts))
    # Read nothing while the reply is produced: its audio waits in the outgoing queue.
    events = []
    await session.start()
    await feed(session, tone(300) + quiet(400))
    for _ in range(200):
        await asyncio.sleep(0.005)
        if session._channel.pending() > 100:  # noqa: SLF001 - white-box: audio is queued
            break
    await feed(session, tone(200))
    await session.close()
    async for event in session.events():
        events.append(event)
    interruption = next(e for e in events if isinstance(e, Interruption))
    frames = [e for e in events if isinstance(e, AudioOut) and e.turn == interruption.turn]
    assert len(frames) < 40 * 5  # 40 words x 100 ms = 200 frames were produced
    assert interruption.played_ms <= len(frames) * 20
    await tts.aclose()


async def test_short_speech_over_the_assistant_is_ignored(make_session):
    config = fast_config(pace_audio=True, min_interruption_ms=400, first_message="")
    brain = FakeBrain(answer=lambda _t: "one two three four five six seven eight nine ten.")
    stt = FakeStt(["question", "mhm"])
    session, rec = await make_session(config, brain=brain, stt=stt)
    await feed(session, tone(300) + quiet(400))
    await rec.wait_type(AssistantSpeechStarted)
    await feed(session, tone(120) + quiet(400))  # a short "mhm"
    await rec.wait_type(AssistantSpeechStopped)
    assert not rec.of(Interruption)
    assert len(rec.of(UserSpeechStarted)) == 2
    assert [t.text for t in rec.of(Transcript) if t.role == "user"] == ["question"]


async def test_user_going_on_before_the_reply_plays_is_answered_together(make_session):
    stt = FakeStt(["my name is Bob", "and I need help"])
    tts = FakeTts(delay=0.3)  # the reply is slow to start
    brain = FakeBrain()
    config = fast_config(first_message="")
    session, rec = await make_session(config, stt=stt, tts=tts, brain=brain)
    await feed(session, tone(300) + quiet(400))
    await rec.wait_type(UserSpeechStopped)
    await feed(session, tone(300) + quiet(400))
    await rec.wait_type(TurnTimings, within=5)
    spoken = [t.text for t in rec.of(Transcript) if t.role == "assistant" and t.final]
    assert spoken == ["You said: my name is Bob and I need help."]
    assert [m["role"] for m in session.history] == ["user", "assistant"]


async def test_goodbye_ends_the_call_after_the_reply(make_session):
    session, rec = await make_session(stt=FakeStt(["ok goodbye"]))
    await rec.wait_type(AssistantSpeechStopped)
    await feed(session, tone(300) + quiet(400))
    ended = await rec.ended()
    assert ended.reason == "assistant_ended"
    spoken = [t.text for t in rec.of(Transcript) if t.role == "assistant" and t.final]
    assert spoken[-1] == "Thank you for calling. Goodbye!"


async def test_max_call_duration_ends_the_call(make_session):
    session, rec = await make_session(fast_config(max_call_seconds=0.2))
    assert (await rec.ended()).reason == "max_duration"


async def test_silence_prompts_once_then_ends(make_session):
    config = fast_config(silence_timeout_seconds=0.15, silence_prompt="Still there, {{name}}?")
    session, rec = await make_session(config)
    assert (await rec.ended()).reason == "silence_timeout"
    spoken = [t.text for t in rec.of(Transcript) if t.role == "assistant" and t.final]
    assert spoken == ["Hi Ann.", "Still there, Ann?"]


async def test_speech_resets_the_silence_prompt(make_session):
    config = fast_config(silence_timeout_seconds=0.3)
    session, rec = await make_session(config, stt=FakeStt(["hello"]))
    await rec.wait_type(AssistantSpeechStopped)
    await asyncio.sleep(0.2)
    await feed(session, tone(200) + quiet(400))
    await rec.wait_type(TurnTimings)
    assert not rec.of(CallEnded)
    assert (await rec.ended(within=3)).reason == "silence_timeout"


async def test_max_utterance_length_forces_the_endpoint(make_session):
    session, rec = await make_session(fast_config(max_utterance_seconds=1.0))
    await rec.wait_type(AssistantSpeechStopped)
    await feed(session, tone(2500))
    stopped = await rec.wait_type(UserSpeechStopped)
    assert 900 <= stopped.end_ms - stopped.start_ms <= 1100


@pytest.mark.parametrize(
    ("stage", "providers", "message"),
    [
        ("stt", {"stt": FakeStt(fail=RuntimeError("mic exploded"))}, "mic exploded"),
        ("stt", {"stt": FakeStt(delay=5)}, "timed out"),
        ("brain", {"brain": FakeBrain(fail=RuntimeError("no brain"))}, "no brain"),
        ("brain", {"brain": FakeBrain(delay=5)}, "timed out"),
    ],
)
async def test_stt_and_brain_failures_are_errors_and_the_call_goes_on(
    make_session, stage, providers, message
):
    config = fast_config(stt_timeout_seconds=0.2, brain_timeout_seconds=0.2)
    session, rec = await make_session(config, **providers)
    await rec.wait_type(AssistantSpeechStopped)
    await feed(session, tone(300) + quiet(400))
    error = await rec.wait_type(Error)
    assert error.stage == stage and message in error.message
    await rec.wait_for(lambda e: isinstance(e, Transcript) and e.final and "wrong" in e.text)
    assert not rec.of(CallEnded)


async def test_tts_failure_ends_the_call_with_an_error(make_session):
    session, rec = await make_session(tts=FakeTts(fail=RuntimeError("voice gone")))
    ended = await rec.ended()
    assert ended.reason == "error"
    assert rec.of(Error)[0].stage == "tts" and "voice gone" in rec.of(Error)[0].message


async def test_tts_timeout_is_an_error_not_a_hang(make_session):
    config = fast_config(tts_timeout_seconds=0.1)
    session, rec = await make_session(config, tts=FakeTts(delay=5))
    assert (await rec.ended()).reason == "error"
    assert rec.of(Error)[0].message == "timed out"


async def test_unknown_provider_fails_start_with_a_clear_error():
    config = fast_config(stt=ProviderSpec("nope"))
    session = Session(config)
    await session.start()
    events = [e async for e in session.events()]
    assert isinstance(events[0], Error) and events[0].stage == "start"
    assert "unknown stt provider 'nope'" in events[0].message
    assert events[-1] == CallEnded(reason="error")


async def test_close_is_idempotent_and_leaves_no_task_thread_or_file(tmp_path):
    before_threads = set(threading.enumerate())
    before_tasks = asyncio.all_tasks()
    path = tmp_path / "call.wav"
    from voice.providers.registry import Providers

    providers = Providers(FakeVad(), FakeStt(), FakeBrain(), FakeTts(), owned=True)
    session = Session(fast_config(recording_path=str(path)), providers=providers)
    await session.start()
    await feed(session, tone(300) + quiet(400))
    await asyncio.sleep(0.1)
    session.hangup()
    await session.close("client_gone")
    await session.close()
    events = [e async for e in session.events()]
    assert [e for e in events if isinstance(e, CallEnded)] == [CallEnded(reason="hangup")]
    assert asyncio.all_tasks() - before_tasks == set()
    assert set(threading.enumerate()) - before_threads == set()
    with wave.open(str(path)) as w:  # closed and complete
        assert w.getnchannels() == 2 and w.getnframes() > 0
    session.push_audio(tone(20))  # after close: ignored, no error


async def test_recording_is_two_channels_time_aligned(tmp_path, make_session):
    import numpy as np

    path = tmp_path / "rec.wav"
    config = fast_config(recording_path=str(path), pace_audio=True, first_message="")
    session, rec = await make_session(config)
    await feed(session, tone(300) + quiet(400), realtime=True)
    await rec.wait_type(AssistantSpeechStarted)
    await feed(session, quiet(1500), realtime=True)
    await session.close()
    with wave.open(str(path)) as w:
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    loud_user = np.flatnonzero(np.abs(data[:, 0]) > 4000)
    loud_assistant = np.flatnonzero(np.abs(data[:, 1]) > 500)
    assert loud_user[0] < loud_user[-1] < 16 * 320
    # The assistant is heard after the user stopped and the endpoint silence passed.
    assert 16 * 600 <= loud_assistant[0] <= 16 * 1300


async def test_push_audio_takes_whole_samples_only(make_session):
    session, _ = await make_session()
    session.push_audio(b"\x00" * 6)
    with pytest.raises(ValueError):
        session.push_audio(b"\x00" * 3)


async def test_events_are_frozen_and_serialise_without_audio():
    event = AudioOut(pcm=b"\x00" * 640, turn=3)
    assert event.to_dict() == {"type": "audio_out", "pcm_bytes": 640, "turn": 3}
    assert CallStarted().to_dict() == {"type": "call_started"}
    with pytest.raises(AttributeError):
        event.turn = 4  # type: ignore[misc]
    assert Error(stage="stt", message="x").to_dict() == {
        "type": "error",
        "stage": "stt",
        "message": "x",
    }


async def test_user_audio_is_kept_only_as_long_as_a_turn_needs_it(make_session):
    stt = FakeStt(["hi"])
    session, rec = await make_session(fast_config(pre_speech_pad_ms=200), stt=stt)
    await rec.wait_type(AssistantSpeechStopped)
    await feed(session, quiet(20_000))
    assert len(session._ring) <= 2 * 16 * 5_000  # noqa: SLF001 - a few seconds, not 20
    await feed(session, tone(3_000) + quiet(400))
    await rec.wait_type(TurnTimings)
    assert 3_180 <= stt.calls[-1] <= 3_260  # the whole utterance plus the 200 ms pad


async def test_user_speech_start_overtakes_queued_audio():
    greeting = " ".join(["word"] * 50) + "."
    config = fast_config(pace_audio=False, first_message=greeting, interruptions_enabled=False)
    tts = FakeTts()
    session = Session(config, providers=fake_providers(tts=tts))
    await session.start()
    for _ in range(200):  # nobody reads: the greeting's audio piles up in the queue
        await asyncio.sleep(0.005)
        if session._channel.pending() > 100:  # noqa: SLF001
            break
    await feed(session, tone(120))
    await session.close()
    events = [e async for e in session.events()]
    first_speech = next(i for i, e in enumerate(events) if isinstance(e, UserSpeechStarted))
    audio = [i for i, e in enumerate(events) if isinstance(e, AudioOut)]
    assert audio[0] > first_speech  # it went out before the audio that was waiting
    await tts.aclose()
