"""The turn detector as a pure state machine (sample positions, no clock)."""

from __future__ import annotations

from voice.turns import TurnDetector, TurnEventKind

W = 320  # 20 ms windows


def run(detector: TurnDetector, pattern: str) -> list[tuple[str, int, int]]:
    """``pattern``: one char per 20 ms window, ``#`` speech, ``.`` silence.
    Returns (kind, start ms, end ms) per event."""
    events = []
    for i, char in enumerate(pattern):
        prob = 0.9 if char == "#" else 0.05
        for e in detector.process(prob, (i + 1) * W, W):
            events.append((e.kind.value, e.start // 16, e.end // 16))
    return events


def detector(**kw) -> TurnDetector:
    values = dict(
        speech_start_ms=60,
        min_interruption_ms=100,
        prefetch_silence_ms=100,
        endpoint_silence_ms=200,
    )
    values.update(kw)
    return TurnDetector(**values)


def test_start_needs_speech_start_ms_of_speech():
    assert run(detector(), "##..........") == []
    assert run(detector(), "...###")[0] == ("start", 60, 120)


def test_pause_then_endpoint_report_the_speech_end():
    events = run(detector(), "#####" + "." * 12)
    assert [e[0] for e in events] == ["start", "sustained", "pause", "endpoint"]
    assert events[2] == ("pause", 0, 100) and events[3] == ("endpoint", 0, 100)


def test_resume_after_pause_keeps_one_utterance():
    events = run(detector(), "#####" + "......" + "#####" + "." * 12)
    kinds = [e[0] for e in events]
    assert kinds == ["start", "sustained", "pause", "resume", "sustained", "pause", "endpoint"]
    assert events[-1] == ("endpoint", 0, 320)


def test_sustained_fires_at_the_minimum_interruption_length():
    events = run(detector(min_interruption_ms=200), "#" * 12)
    assert ("sustained", 0, 200) in events


def test_max_utterance_forces_an_endpoint():
    events = run(detector(max_utterance_ms=400), "#" * 30)
    forced = [e for e in events if e[0] == "endpoint"]
    assert forced[0] == ("endpoint", 0, 400)


def test_hysteresis_keeps_speech_through_a_dip():
    d = detector(threshold=0.5)
    for i in range(5):
        d.process(0.9, (i + 1) * W, W)
    events = d.process(0.4, 6 * W, W)  # above threshold - 0.15: still speech
    assert events == [] and d.in_utterance
    assert d.process(0.9, 7 * W, W) == []


def test_no_prefetch_when_disabled():
    kinds = [e[0] for e in run(detector(prefetch_silence_ms=0), "#####" + "." * 12)]
    assert TurnEventKind.PAUSE.value not in kinds
