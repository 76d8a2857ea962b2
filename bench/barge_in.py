"""Barge-in: user speech onset -> last assistant audio frame emitted, over many interruptions,
with the default offline stack and real-time audio.

The user asks for a long answer, and a moment after the answer starts playing asks again,
talking over it; each time the onset is the first loud sample of the interrupting speech and
the stop is when the last AudioOut frame of the interrupted turn reached the event consumer.
Prints one JSON object as its last line.

    python bench/barge_in.py [--interruptions 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._speech import synthesize  # noqa: E402
from bench.turn_latency import percentile  # noqa: E402
from voice.config import SessionConfig  # noqa: E402
from voice.events import AssistantSpeechStarted, AudioOut, Interruption  # noqa: E402
from voice.providers import registry  # noqa: E402
from voice.session import Session  # noqa: E402

LONG_ANSWER = (
    "We are a small family company. We have sold bicycles for forty years. Our workshop "
    "repairs every brand of bicycle, and our shop is open six days a week."
)
DEBUG = False
KNOWLEDGE = [("Tell me about your company.", LONG_ANSWER)]


def onset_offset(pcm: bytes, threshold: int = 1000) -> int:
    """Byte offset of the first loud sample."""
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
    loud = np.flatnonzero(samples > threshold)
    return int(loud[0]) * 2 if loud.size else 0


async def run(count: int, min_interruption_ms: int) -> dict[str, object]:
    config = SessionConfig(
        knowledge=KNOWLEDGE,
        first_message="Hello.",
        min_interruption_ms=min_interruption_ms,
        silence_timeout_seconds=0,
        max_call_seconds=0,
    )
    providers = await registry.warm_up(config)
    clips = [synthesize("Tell me about your company.", v) for v in ("en-us", "en-f3")]
    session = Session(config, providers=providers)
    last_audio: dict[int, float] = {}
    started: asyncio.Queue[int] = asyncio.Queue()
    interruptions: list[Interruption] = []

    async def consume() -> None:
        async for event in session.events():
            if DEBUG and not isinstance(event, AudioOut):
                print(round(time.perf_counter(), 2), event.to_dict(), file=sys.stderr)
            if isinstance(event, AudioOut):
                last_audio[event.turn] = time.perf_counter()
            elif isinstance(event, AssistantSpeechStarted):
                started.put_nowait(event.turn)
            elif isinstance(event, Interruption):
                interruptions.append(event)

    class Mic:
        """Streams audio in real time, silence when there is nothing to say."""

        def __init__(self) -> None:
            self.queue = bytearray()
            self.mark: int | None = None  # bytes into the queue: note when it is pushed
            self.marked_at: float | None = None

        def say(self, pcm: bytes, mark: int | None = None) -> None:
            self.mark = None if mark is None else len(self.queue) + mark
            self.marked_at = None
            self.queue += pcm

        async def run(self) -> None:
            tick = time.perf_counter()
            while True:
                frame = bytes(self.queue[:640]).ljust(640, b"\x00")
                del self.queue[:640]
                session.push_audio(frame)
                if self.mark is not None:
                    if self.mark < 640:
                        self.marked_at, self.mark = time.perf_counter(), None
                    else:
                        self.mark -= 640
                tick += 0.02
                await asyncio.sleep(max(0.0, tick - time.perf_counter()))

        async def drain(self) -> None:
            await asyncio.sleep(len(self.queue) / 640 * 0.02 + 0.04)

    consumer = asyncio.create_task(consume())
    await session.start()
    mic = Mic()
    feeder = asyncio.create_task(mic.run())
    await started.get()  # greeting
    await asyncio.sleep(1.0)
    rng = random.Random(7)
    samples: list[dict[str, float]] = []
    mic.say(clips[0])
    for i in range(count):
        while True:  # the long answer starts playing
            turn = await asyncio.wait_for(started.get(), 30)
            if turn > 1:
                break
        await asyncio.sleep(rng.uniform(0.6, 1.6))
        clip = clips[(i + 1) % 2]
        before = len(interruptions)
        mic.say(clip, mark=onset_offset(clip))
        await mic.drain()
        for _ in range(100):
            if len(interruptions) > before:
                break
            await asyncio.sleep(0.02)
        if len(interruptions) == before or mic.marked_at is None:
            continue
        event = interruptions[-1]
        samples.append(
            {
                "onset_to_last_frame_ms": (last_audio[event.turn] - mic.marked_at) * 1000,
                "engine_stop_ms": float(event.stop_ms),
            }
        )
    feeder.cancel()
    await session.close()
    await consumer
    await registry.default_cache.aclose()
    latency = [s["onset_to_last_frame_ms"] for s in samples]
    engine = [s["engine_stop_ms"] for s in samples]
    return {
        "bench": "barge_in",
        "interruptions": len(samples),
        "p50_ms": round(percentile(latency, 50) or 0, 1),
        "p95_ms": round(percentile(latency, 95) or 0, 1),
        "engine_stop_p50_ms": percentile(engine, 50),
        "min_interruption_ms": min_interruption_ms,
        "playout_lead_ms": config.playout_lead_ms,
        "note": "audio already sent (up to playout_lead_ms) is flushed by the client on the "
        "Interruption event",
        "goal_p50_ms": 250,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interruptions", type=int, default=12)
    parser.add_argument(
        "--min-interruption-ms", type=int, default=SessionConfig().min_interruption_ms
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.interruptions, args.min_interruption_ms))))


if __name__ == "__main__":
    main()
