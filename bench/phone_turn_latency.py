"""Phone calls through Twilio Media Streams: reply latency and server CPU per call-second.

Everything real but Twilio itself: a real daphne and job worker (`tests/e2e/liveserver.py`,
SQLite), the official `twilio` SDK placing the calls, and the Twilio emulator
(`twilio_emulator`) on the far end streaming 8 kHz mu-law in real time and acknowledging marks
as the audio plays. The assistant runs the default offline stack (Silero VAD, Whisper base, the
knowledge engine, Piper).

1. Latency: one call in which the callee asks N questions (espeak-ng, two voices), each after
   the previous answer has played. Per turn: the end of the callee's speech in the emulator's
   audio -> the first media frame of the reply reaching the emulator. Goal: p50 <= 650 ms.
2. Barge-in: in another call the callee presses 1 (a DTMF rule that makes the assistant read
   a long line), lets it play for a moment, then talks over it, K times. Per interruption: the
   first frame of the callee's speech leaving the emulator -> the server's `clear` reaching it.
   Goal: within 200 ms (the assistant's `min_interruption_ms`, 150 here as in
   `bench/barge_in.py`, is part of it: speech shorter than that is not an interruption).
3. CPU: M calls at once, each greeted and then listening to a callee who says nothing for
   `--listen` seconds. The daphne process's CPU time (user + system, /proc) over the window in
   which all M are connected and listening, divided by M x the window: CPU ms per call-second
   of the phone path (mu-law, resampling, JSON/base64 framing, VAD). No Opus or SRTP here.
   Goal: <= 15 ms.

Usage: .venv/bin/python bench/phone_turn_latency.py [--turns 20] [--interruptions 8]
       [--calls 10] [--listen 20]
Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "e2e")]

from liveserver import start_server  # noqa: E402

from bench._speech import synthesize  # noqa: E402
from bench.live_fanout import percentile  # noqa: E402
from twilio_emulator import (  # noqa: E402
    Dtmf,
    Hangup,
    Scenario,
    Silence,
    Speak,
    TwilioEmulator,
    WaitForReply,
)

PUBLIC = "https://voice.example.test"
OUR_NUMBER = "+14155550100"
KNOWLEDGE = [
    {"question": "What are your opening hours?", "answer": "We are open from nine to six."},
    {"question": "Where is the shop?", "answer": "Our shop is at twelve Harbour Street."},
    {"question": "Do you repair bikes?", "answer": "Yes, repairs take one day."},
    {"question": "How much does a rental cost?", "answer": "A rental is fifteen euros a day."},
]
QUESTIONS = [
    "What are your opening hours?",
    "Where is the shop?",
    "Do you repair bikes?",
    "How much does a rental cost?",
    "When do you open?",
]
VOICES = ["en-us-slow", "en-f3"]
GOAL_P50_MS = 650
GOAL_CPU_MS = 15
GOAL_CLEAR_MS = 200
LONG_LINE = (
    "Let me tell you about our shop. We started as a small family business many years ago, "
    "and since then we have grown a lot. We now serve customers in many towns and villages, "
    "and we still answer every single call ourselves."
)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def setup(server, emulator) -> dict:
    assistant = server.create_assistant(
        name="Phone bench",
        starting_message="Hello, thanks for calling.",
        knowledge=KNOWLEDGE,
        min_interruption_ms=150,
        dtmf_rules={"1": {"action": "say", "text": LONG_LINE}},
    )
    account = server.api(
        "POST",
        "/telephony/twilio-accounts",
        {
            "name": "Emulator",
            "account_sid": emulator.account_sid,
            "auth_token": emulator.auth_token,
        },
        expect=201,
    )["data"]
    return server.api(
        "POST",
        "/phone-numbers",
        {"number": OUR_NUMBER, "twilio_account_id": account["id"], "assistant_id": assistant["id"]},
        expect=201,
    )["data"]


def placed_call(emulator, to: str, timeout: float = 30):
    """The emulator's newest call to ``to`` (the one just dialled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        calls = [c for c in list(emulator.calls.values()) if c.to == to]
        if calls:
            return calls[-1]
        time.sleep(0.05)
    raise TimeoutError(f"no call to {to} within {timeout} s")


def dial(server, number: dict, to: str) -> str:
    body = {"phone_purchase_id": number["id"], "phoneNumber": to, "provider": "twilio"}
    return server.api("POST", "/calls/phone/initiate", body, expect=201)["callId"]


def latency_run(server, emulator, number: dict, turns: int) -> dict:
    to = "+14155552000"
    script: list = [WaitForReply(timeout=30)]
    for i in range(turns):
        text = QUESTIONS[i % len(QUESTIONS)]
        pcm = synthesize(text, VOICES[i % len(VOICES)])
        script += [Speak(pcm, rate=16000, label=f"q{i}"), WaitForReply(timeout=30, settle=0.6)]
    script.append(Hangup())
    emulator.set_scenario(to, Scenario(ring_seconds=0.2, script=script))
    dial(server, number, to)
    call = placed_call(emulator, to)
    call.wait_ended(60 + turns * 20)
    latencies = [t.latency * 1000 for t in call.turns if t.latency is not None]
    return {
        "turns": turns,
        "answered": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 95), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
    }


def barge_in_run(server, emulator, number: dict, count: int) -> dict:
    to = "+14155552100"
    interrupt = synthesize("Wait a moment please.", "en-us")
    script: list = [WaitForReply(timeout=30)]
    for i in range(count):
        script += [
            Dtmf("1"),
            Silence(1.5),  # the long line is playing
            Speak(interrupt, rate=16000, label=f"barge{i}"),
            WaitForReply(timeout=30, settle=0.6),
        ]
    script.append(Hangup())
    emulator.set_scenario(to, Scenario(ring_seconds=0.2, script=script))
    dial(server, number, to)
    call = placed_call(emulator, to)
    call.wait_ended(60 + count * 20)
    clears = [c.at for stream in call.streams for c in stream.clears]
    delays = []
    for turn in call.turns:
        after = [at for at in clears if at >= turn.started_at]
        if after and after[0] - turn.started_at < 3:
            delays.append((after[0] - turn.started_at) * 1000)
    return {
        "interruptions": count,
        "cleared": len(delays),
        "clear_p50_ms": round(statistics.median(delays), 1) if delays else None,
        "clear_p95_ms": round(percentile(delays, 95), 1) if delays else None,
    }


def cpu_run(server, emulator, number: dict, calls: int, listen: float) -> dict:
    script = [WaitForReply(timeout=60), Silence(listen), Hangup()]
    targets = [f"+1415555{3000 + i:04d}" for i in range(calls)]
    for to in targets:
        emulator.set_scenario(to, Scenario(ring_seconds=0.2, script=script))
    before = len(emulator.calls)
    for to in targets:
        dial(server, number, to)
    deadline = time.monotonic() + 120
    while len(emulator.calls) < before + calls and time.monotonic() < deadline:
        time.sleep(0.1)
    placed = list(emulator.calls.values())[before:]

    def greeted(call) -> bool:
        stream = call.stream
        return stream is not None and bool(stream.received("media")) and stream.queued_seconds == 0

    while not all(greeted(c) for c in placed) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)  # the last greeting's marks come back
    pid = server.proc.pid
    start_cpu, start = cpu_seconds(pid), time.monotonic()
    window = max(1.0, listen - (time.monotonic() - min(c.answered_at for c in placed)) - 2)
    time.sleep(window)
    used = cpu_seconds(pid) - start_cpu
    elapsed = time.monotonic() - start
    for call in placed:
        call.wait_ended(60)
    return {
        "calls": calls,
        "window_s": round(elapsed, 1),
        "cpu_ms_per_call_second": round(1000 * used / (elapsed * calls), 2),
        "server_cpu_share": round(used / elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--interruptions", type=int, default=8)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--listen", type=float, default=20.0)
    args = parser.parse_args()
    emulator = TwilioEmulator()
    emulator.start()
    server = start_server(
        extra_env={
            "PUBLIC_BASE_URL": PUBLIC,
            "TWILIO_API_BASE_URL": emulator.base_url,
            "WEBRTC_ENABLED": "0",
            "MAX_CONCURRENT_CALLS": str(max(10, args.calls + 2)),
        }
    )
    try:
        emulator.rewrite[PUBLIC] = f"http://127.0.0.1:{server.port}"
        server.start_worker()
        number = setup(server, emulator)
        latency = latency_run(server, emulator, number, args.turns)
        print(f"latency over {latency['answered']}/{args.turns} turns: {latency}", flush=True)
        barge = barge_in_run(server, emulator, number, args.interruptions)
        print(f"barge-in over {args.interruptions} interruptions: {barge}", flush=True)
        cpu = cpu_run(server, emulator, number, args.calls, args.listen)
        print(f"cpu with {args.calls} calls listening: {cpu}", flush=True)
    finally:
        server.stop()
        emulator.stop()
    result = {
        "bench": "phone_turn_latency",
        **{f"latency_{k}": v for k, v in latency.items()},
        **barge,
        **cpu,
        "goal_p50_ms": GOAL_P50_MS,
        "goal_cpu_ms": GOAL_CPU_MS,
        "goal_clear_ms": GOAL_CLEAR_MS,
        "clear_within_goal": barge["clear_p50_ms"] is not None
        and barge["clear_p50_ms"] <= GOAL_CLEAR_MS,
        "p50_within_goal": latency["p50_ms"] is not None and latency["p50_ms"] <= GOAL_P50_MS,
        "cpu_within_goal": cpu["cpu_ms_per_call_second"] <= GOAL_CPU_MS,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
