"""End of user speech -> first assistant audio, over many turns, with the default offline
stack (Silero VAD, faster-whisper base, knowledge brain, Piper).

Speech is synthesised with espeak-ng (two voices, alternating) and streamed in real time in
20 ms frames, as a transport would.  Prints one JSON object as its last line.

    python bench/turn_latency.py [--turns 20] [--endpoint-ms 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._speech import silence, synthesize  # noqa: E402
from voice.config import SessionConfig  # noqa: E402
from voice.events import AssistantSpeechStopped, AudioOut, CallEnded, TurnTimings  # noqa: E402
from voice.providers import registry  # noqa: E402
from voice.session import Session  # noqa: E402

KNOWLEDGE = [
    ("What are your opening hours?", "We are open from nine to five, Monday to Saturday."),
    ("How much does the premium plan cost?", "The premium plan costs twenty euros a month."),
    ("Do you deliver to Berlin?", "Yes, we deliver to Berlin within two days."),
    ("Can I return a product?", "You can return any product within thirty days."),
    ("Where is your office?", "Our office is at the central station."),
]
QUESTIONS = [
    "What are your opening hours on Saturday?",
    "How much does the premium plan cost per month?",
    "Can I return a product after thirty days?",
    "Where is your office?",
    "When are you open?",
]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run(turns: int, endpoint_ms: int, verbose: bool = False) -> dict[str, object]:
    config = SessionConfig(
        knowledge=KNOWLEDGE,
        first_message="Hello.",
        endpoint_silence_ms=endpoint_ms,
        silence_timeout_seconds=0,
        max_call_seconds=0,
    )
    t = time.perf_counter()
    providers = await registry.warm_up(config)
    warm_s = time.perf_counter() - t
    clips = [synthesize(q, voice) for q in QUESTIONS for voice in ("en-us", "en-f3")]
    session = Session(config, providers=providers)
    timings: list[TurnTimings] = []
    stopped = asyncio.Event()

    async def consume() -> None:
        async for event in session.events():
            if verbose and not isinstance(event, AudioOut):
                print(round(time.perf_counter(), 2), event.to_dict(), file=sys.stderr)
            if isinstance(event, TurnTimings):
                timings.append(event)
            elif isinstance(event, AssistantSpeechStopped | CallEnded):
                stopped.set()

    async def stream(pcm: bytes) -> None:
        start = time.perf_counter()
        for i, offset in enumerate(range(0, len(pcm), 640)):
            session.push_audio(pcm[offset : offset + 640].ljust(640, b"\x00"))
            delay = start + (i + 1) * 0.02 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)

    lags: list[float] = []

    async def watch_loop() -> None:
        """How late a 5 ms sleep wakes up: the longest the event loop was blocked."""
        while True:
            start = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append((time.perf_counter() - start - 0.005) * 1000)

    watcher = asyncio.create_task(watch_loop())
    consumer = asyncio.create_task(consume())
    await session.start()
    await stream(silence(300))
    await asyncio.wait_for(stopped.wait(), 30)  # the first message
    for turn in range(turns):
        stopped.clear()
        await stream(clips[turn % len(clips)])
        listen = asyncio.create_task(stream(silence(6000)))
        await asyncio.wait_for(stopped.wait(), 30)
        listen.cancel()
        await stream(silence(300))
    await session.close()
    await consumer
    watcher.cancel()
    await registry.default_cache.aclose()

    answered = [t for t in timings if t.first_audio_ms is not None]
    latency = [float(t.first_audio_ms) for t in answered]  # type: ignore[arg-type]

    def stage(name: str) -> dict[str, float | None]:
        values = [float(getattr(t, name)) for t in answered if getattr(t, name) is not None]
        return {"p50": percentile(values, 50), "p95": percentile(values, 95)}

    return {
        "bench": "turn_latency",
        "turns": len(answered),
        "endpoint_silence_ms": endpoint_ms,
        "p50_ms": percentile(latency, 50),
        "p95_ms": percentile(latency, 95),
        "mean_ms": round(statistics.fmean(latency), 1) if latency else None,
        "stages_ms_from_speech_end": {
            "endpoint": stage("endpoint_ms"),
            "transcript_ready": stage("transcript_ms"),
            "first_reply_text": stage("first_text_ms"),
            "first_audio_out": stage("first_audio_ms"),
        },
        "event_loop_lag_ms": {
            "p99": round(percentile(lags, 99) or 0, 2),
            "max": round(max(lags, default=0), 2),
        },
        "stack": {
            "vad": "silero",
            "stt": "faster-whisper base int8",
            "brain": "knowledge",
            "tts": "piper",
        },
        "warm_up_s": round(warm_s, 2),
        "goal_p50_ms": 800,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--endpoint-ms", type=int, default=SessionConfig().endpoint_silence_ms)
    parser.add_argument("--verbose", action="store_true", help="events on stderr")
    args = parser.parse_args()
    result = asyncio.run(run(args.turns, args.endpoint_ms, args.verbose))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
