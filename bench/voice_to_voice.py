"""Voice to voice in a real browser over the WebSocket path: end of the visitor's speech ->
first sample of the assistant's reply played in the page, with the default offline stack.

A real daphne (WebRTC off, so the widget streams over the call socket) and headless Chromium
with a fake microphone playing a WAV made here with espeak-ng: silence for the greeting, then
N questions from the assistant's knowledge base, each followed by enough silence for the
answer. Where each question's speech ends is read from the WAV (last loud sample); where each
reply started playing is the widget's `debug.replyStarts` (performance.now() of the first
audible sample after a gap), relative to `debug.micStartedAt` (the first captured frame).

Usage: .venv/bin/python bench/voice_to_voice.py [--turns 12]
Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from liveserver import launch_chromium, start_server  # noqa: E402

from bench._speech import synthesize  # noqa: E402

KNOWLEDGE = [
    ("What are your opening hours?", "We are open from nine to six."),
    ("Where is the shop?", "At twelve Harbour Street."),
    ("Do you repair bikes?", "Yes, repairs take one day."),
    ("How much is a rental?", "Fifteen euros a day."),
]
GREETING = "Hello, how can I help?"
RATE = 16000
LEAD_SECONDS = 5.0  # the greeting plays meanwhile
GAP_SECONDS = 6.5  # after each question: endpoint, reply and its audio


def build_wav(turns: int, path: Path) -> list[float]:
    """Writes the microphone WAV; returns where each question's speech ends (seconds)."""
    parts = [np.zeros(int(LEAD_SECONDS * RATE), dtype=np.int16)]
    ends = []
    position = len(parts[0])
    for i in range(turns):
        question = np.frombuffer(synthesize(KNOWLEDGE[i % len(KNOWLEDGE)][0], "en-us-slow"), "<i2")
        loud = np.nonzero(np.abs(question.astype(np.int32)) > 500)[0]
        ends.append((position + int(loud[-1])) / RATE)
        gap = np.zeros(int(GAP_SECONDS * RATE), dtype=np.int16)
        parts += [question, gap]
        position += len(question) + len(gap)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.concatenate(parts).tobytes())
    return ends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=12)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    workdir = Path(tempfile.mkdtemp(prefix="v2v-"))
    wav = workdir / "questions.wav"
    ends = build_wav(args.turns, wav)
    total_seconds = LEAD_SECONDS + args.turns * (GAP_SECONDS + 2.5)
    server = start_server(extra_env={"WEBRTC_ENABLED": "0"})
    try:
        assistant = server.create_assistant(
            starting_message=GREETING,
            knowledge=[{"question": q, "answer": a} for q, a in KNOWLEDGE],
            silence_timeout_seconds=120,
        )
        widget = server.create_widget(
            assistantId=assistant["id"], allowed_origins=[server.page_base]
        )
        with sync_playwright() as pw:
            browser = launch_chromium(pw, fake_mic_wav=wav)
            page = browser.new_page()
            page.goto(server.demo_url(widget["id"]))
            page.click("voice-widget .start")
            page.wait_for_function(
                "() => document.querySelector('voice-widget').debug.micStartedAt > 0", timeout=30000
            )
            page.wait_for_timeout(int(total_seconds * 1000))
            debug = page.evaluate("() => ({...document.querySelector('voice-widget').debug})")
            call_id = debug.get("callId")
            page.click("voice-widget .end")
            page.wait_for_timeout(1500)
            browser.close()
        transcript = server.api("GET", f"/calls/{call_id}/transcripts", expect=200)["data"]
    finally:
        server.stop()

    mic0 = debug["micStartedAt"]
    starts = sorted(debug.get("replyStarts") or [])
    latencies = []
    for end in ends:
        end_ms = mic0 + end * 1000
        after = [s for s in starts if s > end_ms]
        if after and after[0] - end_ms < GAP_SECONDS * 1000:
            latencies.append(after[0] - end_ms)
    users = [t["text"] for t in transcript["transcripts"] if t["role"] == "user"]
    result = {
        "benchmark": "voice_to_voice",
        "transport": debug.get("audio"),
        "turns_spoken": len(ends),
        "turns_answered": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(float(np.percentile(latencies, 95)), 1) if latencies else None,
        "min_ms": round(min(latencies), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "latencies_ms": [round(x, 1) for x in latencies],
        "user_transcripts": users,
        "goal_p50_ms": 1000,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
