"""Live transcript fan-out: a final transcript line stored -> every live subscriber has it.

A real daphne (`tests/e2e/liveserver.py`, SQLite, the in-memory channel layer of one process),
an assistant with the light stack (WebRTC VAD, espeak TTS, the default Whisper STT and the
knowledge brain) and a few knowledge entries. A `websockets` client is the caller: it speaks
espeak questions over the call socket (16 kHz PCM16, 20 ms frames in real time, silence in
between, as a microphone would), one after each of the assistant's answers, then hangs up.
Before the call starts, N subscribers (default 20) connect to `/ws/calls/{id}`, each with its
own single-use `temp_token` from `GET /v1/calls/{id}/live`.

For each final transcript line (the caller's and the assistant's) the delay is measured from
the line being stored to each subscriber receiving its `transcript_update`: the start is the
`created_at` of its `transcript.final` event, carried in the update (`data.created_at`, the
row's insert time on the server, taken inside the transaction, so the commit, the publish and
the fan-out are all in the delay), the end is the subscriber's `time.time()` when its socket
hands the message over; server and clients share this machine's clock. p50/p95 are over all
lines x subscribers. Each subscriber's updates are also checked: every event in order (its
`event_seq` values consecutive, after those in `connected`), and the lines equal to the call's
transcript read back through `GET /v1/calls/{id}/transcripts`.

Usage: .venv/bin/python bench/live_fanout.py [--subscribers 20] [--questions 4]
Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from liveserver import LiveServer, start_server  # noqa: E402

from bench._speech import silence, synthesize  # noqa: E402

KNOWLEDGE = [
    {"question": "What are your opening hours?", "answer": "We are open from nine to six."},
    {"question": "Where is the shop?", "answer": "Our shop is at twelve Harbour Street."},
    {"question": "Do you repair bikes?", "answer": "Yes, repairs take one day."},
    {"question": "How much is a rental?", "answer": "A rental is fifteen euros a day."},
]
GREETING = "Hello, how can I help?"
LIGHT_SPEECH = {"vad": {"provider": "webrtc"}, "tts": {"provider": "espeak"}}
FRAME_BYTES = 640  # 20 ms of 16 kHz PCM16
GOAL_P95_MS = 100


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# ----------------------------------------------------------------------------- the caller


@dataclass
class CallerLog:
    """What the caller's socket received (text messages only), with receipt times."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    hung_up_at: float | None = None  # time.time() when `{"type": "end"}` was sent


async def speak_call(
    gateway_url: str,
    utterances: list[bytes],
    *,
    answer_timeout: float = 30.0,
    after_last: float = 0.0,
) -> CallerLog:
    """Run a call over the call socket as a microphone would: `hello`, then 20 ms frames in
    real time for the whole call (silence, or the next utterance once the assistant has
    finished speaking: its greeting first, then its answer to the previous utterance), then
    `{"type": "end"}` once the last answer is over (and `after_last` seconds more); returns
    when the server has closed the socket."""
    import websockets

    log = CallerLog()
    quiet = asyncio.Event()  # the assistant has finished what it was saying
    done_speaking = asyncio.Event()
    to_say = list(utterances)

    async with websockets.connect(gateway_url, max_size=2**22) as ws:
        await ws.send(json.dumps({"type": "hello", "audio": "websocket"}))

        async def receive() -> None:
            async for message in ws:
                if isinstance(message, bytes):
                    continue  # the assistant's audio
                data = json.loads(message)
                data["_received"] = time.time()
                log.messages.append(data)
                if data["type"] == "assistant.speech.stopped":
                    quiet.set()

        async def microphone() -> None:
            start = time.perf_counter()
            sent = 0
            pending = b""
            while True:
                if not pending and quiet.is_set():
                    quiet.clear()
                    if to_say:
                        # A short pause after the assistant stops, as a person leaves.
                        pending = silence(400) + to_say.pop(0)
                    else:
                        done_speaking.set()
                frame = pending[:FRAME_BYTES].ljust(FRAME_BYTES, b"\x00")
                pending = pending[FRAME_BYTES:]
                await ws.send(frame)
                sent += 1
                delay = start + sent * 0.02 - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)

        receiver = asyncio.create_task(receive())
        mic = asyncio.create_task(microphone())
        try:
            async with asyncio.timeout(answer_timeout * (len(to_say) + 1)):
                await done_speaking.wait()
            await asyncio.sleep(after_last)
            log.hung_up_at = time.time()
            await ws.send(json.dumps({"type": "end"}))
            async with asyncio.timeout(30):
                await receiver
        finally:
            mic.cancel()
            receiver.cancel()
        log.close_code = ws.close_code
    return log


# ----------------------------------------------------------------------------- subscribers


@dataclass
class Subscriber:
    connected: dict[str, Any] | None = None
    updates: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    close_code: int | None = None


async def subscribe(url: str, ready: asyncio.Event, count: list[int], total: int) -> Subscriber:
    import websockets

    sub = Subscriber()
    async with websockets.connect(url) as ws:
        async for message in ws:
            received = time.time()
            data = json.loads(message)
            if data["type"] == "connected":
                sub.connected = data
                count[0] += 1
                if count[0] == total:
                    ready.set()
            else:
                sub.updates.append((received, data))
        sub.close_code = ws.close_code
    return sub


async def loop_lag(lags: list[float]) -> None:
    """How late a 5 ms sleep wakes up in the client process (the clients' own delay)."""
    while True:
        start = time.perf_counter()
        await asyncio.sleep(0.005)
        lags.append((time.perf_counter() - start - 0.005) * 1000)


# ----------------------------------------------------------------------------- the bench


async def scenario(
    server: LiveServer, call: dict, urls: list[str], utterances: list[bytes]
) -> tuple[list[Subscriber], CallerLog, list[float]]:
    ready = asyncio.Event()
    count = [0]
    lags: list[float] = []
    watcher = asyncio.create_task(loop_lag(lags))
    subscribers = [asyncio.create_task(subscribe(u, ready, count, len(urls))) for u in urls]
    async with asyncio.timeout(30):
        await ready.wait()  # all subscribed before the call starts
    caller = await speak_call(call["gateway"]["url"], utterances)
    async with asyncio.timeout(30):
        subs = await asyncio.gather(*subscribers)
    watcher.cancel()
    return list(subs), caller, lags


def check_subscriber(sub: Subscriber, lines: list[tuple[str, str]]) -> list[str]:
    """What is wrong with one subscriber's view of the call (empty: nothing)."""
    problems = []
    if sub.connected is None:
        return ["no connected message"]
    first = max((e["seq"] for e in sub.connected["data"]["events"]), default=0)
    seqs = [u["data"]["event_seq"] for _, u in sub.updates if "event_seq" in u.get("data", {})]
    if seqs != list(range(first + 1, first + 1 + len(seqs))):
        problems.append(f"event_seq not consecutive after {first}: {seqs}")
    got = [
        (u["data"]["role"], u["data"]["text"])
        for _, u in sub.updates
        if u["type"] == "transcript_update"
    ]
    if got != lines:
        problems.append(f"lines differ: {got} != {lines}")
    if not sub.updates or sub.updates[-1][1]["data"].get("event") != "call.ended":
        problems.append("the last update is not call.ended")
    if sub.close_code != 1000:
        problems.append(f"closed {sub.close_code}")
    return problems


def run(subscribers: int, questions: int) -> dict[str, Any]:
    for name in ("httpx", "httpcore", "websockets"):
        logging.getLogger(name).setLevel(logging.WARNING)
    utterances = [
        synthesize(KNOWLEDGE[i % len(KNOWLEDGE)]["question"], "en-us-slow")
        for i in range(questions)
    ]
    server = start_server(extra_env={"WEBRTC_ENABLED": "0"})
    try:
        assistant = server.create_assistant(
            name="Fan-out bench",
            starting_message=GREETING,
            knowledge=KNOWLEDGE,
            speech=LIGHT_SPEECH,
        )
        call = server.api(
            "POST", "/calls/initiate", {"assistantId": assistant["id"], "type": "web"}, 201
        )
        call_id = call["callId"]
        urls = []
        for _ in range(subscribers):
            live = server.api("GET", f"/calls/{call_id}/live", expect=200)["data"]
            urls.append(f"{live['websocket_url']}?session_token={live['temp_token']}")
        subs, caller, lags = asyncio.run(scenario(server, call, urls, utterances))
        stored = server.api("GET", f"/calls/{call_id}/transcripts", expect=200)["data"]
        daphne_alive = server.alive()
    finally:
        server.stop()

    lines = [(t["role"], t["text"]) for t in stored["transcripts"]]
    delays: list[float] = []
    per_line_worst: list[float] = []
    by_event: dict[str, list[float]] = {}
    for sub in subs:
        for received, update in sub.updates:
            if update["type"] == "transcript_update":
                delay = (received - epoch(update["data"]["created_at"])) * 1000
                delays.append(delay)
                by_event.setdefault(update["data"]["event_id"], []).append(delay)
    per_line_worst = [max(v) for v in by_event.values()]
    problems = {i: p for i, sub in enumerate(subs) if (p := check_subscriber(sub, lines))}
    complete = len(by_event) == len(lines) and all(len(v) == subscribers for v in by_event.values())
    p95 = percentile(delays, 95)
    return {
        "bench": "live_fanout",
        "subscribers": subscribers,
        "lines": len(lines),
        "caller_lines": sum(1 for role, _ in lines if role == "user"),
        "samples": len(delays),
        "p50_ms": round(percentile(delays, 50) or 0, 1),
        "p95_ms": round(p95 or 0, 1),
        "max_ms": round(max(delays, default=0), 1),
        "mean_ms": round(statistics.fmean(delays), 1) if delays else None,
        "last_subscriber_per_line_ms": {
            "p50": round(percentile(per_line_worst, 50) or 0, 1),
            "max": round(max(per_line_worst, default=0), 1),
        },
        "delay_from": "transcript.final event created_at (data.created_at of transcript_update)",
        "every_subscriber_every_update_in_order": complete and not problems,
        "problems": {str(k): v for k, v in list(problems.items())[:3]},
        "transcript": [f"{role}: {text}" for role, text in lines],
        "caller_close_code": caller.close_code,
        "client_loop_lag_ms": {
            "p99": round(percentile(lags, 99) or 0, 2),
            "max": round(max(lags, default=0), 2),
        },
        "daphne_alive": daphne_alive,
        "goal_p95_ms": GOAL_P95_MS,
        "goal_met": p95 is not None and p95 <= GOAL_P95_MS and complete and not problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=20)
    parser.add_argument("--questions", type=int, default=4)
    args = parser.parse_args()
    print(json.dumps(run(args.subscribers, args.questions)))


if __name__ == "__main__":
    main()
