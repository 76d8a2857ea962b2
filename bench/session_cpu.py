"""CPU per call-second and memory per session for N concurrent *listening* sessions:
16 kHz audio streaming in every 20 ms (quiet noise), VAD running, nobody talking.

Sessions use the default offline stack's shared providers (Silero VAD batched across calls;
Whisper, the knowledge brain and Piper are loaded but idle).  One driver task pushes a 20 ms
frame to every session per tick, as a server's sockets would, and one consumer task per
session reads its events.  CPU is this process's user+system time (``resource``), so the
driver's own cost is included (reported separately too).  Prints one JSON object last.

    python bench/session_cpu.py [--sessions 10 50 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voice.config import SessionConfig  # noqa: E402
from voice.providers import registry  # noqa: E402
from voice.session import Session  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


def noise_frames(count: int = 50) -> list[bytes]:
    rng = np.random.default_rng(1)
    return [(rng.standard_normal(320) * 30).astype("<i2").tobytes() for _ in range(count)]


async def drive(sessions: list[Session], frames: list[bytes], seconds: float) -> float:
    """Push real-time audio to every session for ``seconds``; return CPU seconds used."""
    ticks = int(seconds / 0.02)
    start_cpu, start = cpu_seconds(), time.perf_counter()
    for tick in range(ticks):
        frame = frames[tick % len(frames)]
        for session in sessions:
            session.push_audio(frame)
        delay = start + (tick + 1) * 0.02 - time.perf_counter()
        await asyncio.sleep(max(0.0, delay))
    return cpu_seconds() - start_cpu


async def measure(n: int, seconds: float, providers: registry.Providers) -> dict[str, float]:
    config = SessionConfig(first_message="", silence_timeout_seconds=0, max_call_seconds=0)
    frames = noise_frames()
    gc.collect()
    rss_before = rss_mb()
    sessions = [Session(config, providers=providers) for _ in range(n)]
    for session in sessions:
        await session.start()

    async def consume(session: Session) -> None:
        async for _ in session.events():
            pass

    consumers = [asyncio.create_task(consume(s)) for s in sessions]
    await drive(sessions, frames, 2.0)  # warm: buffers and batches reach steady state
    cpu = await drive(sessions, frames, seconds)
    gc.collect()
    rss_after = rss_mb()
    for session in sessions:
        await session.close()
    await asyncio.gather(*consumers)
    return {
        "sessions": n,
        "cpu_ms_per_call_second": round(cpu * 1000 / (n * seconds), 2),
        "cpu_percent_of_one_core": round(cpu * 100 / seconds, 1),
        "rss_mb_per_session": round((rss_after - rss_before) / n, 3),
    }


async def driver_only(n: int, seconds: float) -> float:
    class Sink:
        def push_audio(self, pcm: bytes) -> None:
            pass

    cpu = await drive([Sink() for _ in range(n)], noise_frames(), seconds)  # type: ignore[list-item]
    return round(cpu * 1000 / (n * seconds), 2)


async def run(counts: list[int], seconds: float) -> dict[str, object]:
    providers = await registry.warm_up(SessionConfig())
    baseline_rss = rss_mb()
    results = [await measure(n, seconds, providers) for n in counts]
    driver = await driver_only(max(counts), min(seconds, 5.0))
    await registry.default_cache.aclose()
    worst = max(r["cpu_ms_per_call_second"] for r in results)
    return {
        "bench": "session_cpu",
        "seconds_per_point": seconds,
        "results": results,
        "driver_only_cpu_ms_per_call_second": driver,
        "process_rss_mb_with_models": round(baseline_rss, 1),
        "vad": "silero (one shared model, batched)",
        "max_cpu_ms_per_call_second": worst,
        "goal_cpu_ms_per_call_second": 10,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.sessions, args.seconds))))


if __name__ == "__main__":
    main()
