"""Webhook delivery through the real job worker: latency for a fresh event on an idle queue,
and throughput for a backlog.

For each setup (SQLite with one worker, PostgreSQL with two) it starts daphne and the workers
(`manage.py worker`), subscribes a receiver on 127.0.0.1 to `call.created`, and then:

- latency: creates calls one at a time (`POST /v1/calls/initiate`, each records a
  `call.created` event) with the queue idle, and measures the event's timestamp (taken in the
  recording transaction, just before commit) -> receipt at the receiver;
- throughput: with the workers stopped, creates a backlog of events, starts the workers and
  measures events delivered per second from the first receipt to the last.

Prints a line per setup and one JSON object last. Goals: p50 <= 1 s for a fresh event,
>= 100 events/s on PostgreSQL with two workers.

    .venv/bin/python bench/webhook_delivery.py [--latency-events 30] [--backlog 600]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from liveserver import fresh_postgres_database, start_server  # noqa: E402

from tests.webhooks.receiver import Receiver  # noqa: E402

ENV = {
    "WEBHOOK_ALLOW_HTTP": "1",
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
    "WEBRTC_ENABLED": "0",
    "MAX_CONCURRENT_CALLS": "1000",
    "CALL_TOKEN_TTL_SECONDS": "60",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def run_setup(name: str, extra_env: dict, workers: int, args) -> dict:
    server = start_server(extra_env={**ENV, **extra_env, "JOBS_WORKERS": "2"})
    try:
        with Receiver() as receiver:
            endpoint = server.api(
                "POST", "/webhooks", {"url": receiver.url, "events": ["call.created"]}, 201
            )["data"]
            assistant = server.create_assistant(
                speech={"vad": {"provider": "webrtc"}, "tts": {"provider": "espeak"}}
            )
            body = {"assistantId": assistant["id"], "type": "web"}
            procs = [server.start_worker() for _ in range(workers)]
            time.sleep(3)  # workers up and idle

            latencies = []
            for _ in range(args.latency_events):
                before = len(receiver.received)
                server.api("POST", "/calls/initiate", body, 201)
                if not wait_until(lambda b=before: len(receiver.received) > b, 30):
                    raise SystemExit(f"{name}: an event was not delivered within 30 s")
                got = receiver.received[-1].json
                stamp = datetime.fromisoformat(got["timestamp"].replace("Z", "+00:00"))
                latencies.append((receiver.received[-1].at - stamp.timestamp()) * 1000)
                time.sleep(0.3)

            for proc in procs:
                server.stop_worker(proc)
            receiver.received.clear()
            for _ in range(args.backlog):
                server.api("POST", "/calls/initiate", body, 201)
            procs = [server.start_worker() for _ in range(workers)]
            if not wait_until(lambda: len(receiver.received) >= args.backlog, 600):
                raise SystemExit(f"{name}: backlog not delivered within 600 s")
            times = sorted(r.at for r in receiver.received)
            span = times[-1] - times[0]
            rate = (len(times) - 1) / span if span > 0 else float("inf")
            result = {
                "setup": name,
                "workers": workers,
                "latency_events": len(latencies),
                "p50_ms": round(statistics.median(latencies), 1),
                "p95_ms": round(percentile(latencies, 0.95), 1),
                "backlog": args.backlog,
                "events_per_second": round(rate, 1),
                "endpoint": endpoint["id"],
            }
            print(
                f"{name}: fresh event p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms; "
                f"backlog of {args.backlog}: {result['events_per_second']} events/s",
                flush=True,
            )
            return result
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-events", type=int, default=30)
    parser.add_argument("--backlog", type=int, default=600)
    args = parser.parse_args()
    results = [run_setup("sqlite", {}, 1, args)]
    with fresh_postgres_database("vw_bench") as url:
        results.append(run_setup("postgresql", {"DATABASE_URL": url}, 2, args))
    sqlite, pg = results
    print(
        json.dumps(
            {
                "bench": "webhook_delivery",
                "sqlite_1_worker": {k: v for k, v in sqlite.items() if k != "endpoint"},
                "postgresql_2_workers": {k: v for k, v in pg.items() if k != "endpoint"},
                "goal_p50_ms": 1000,
                "goal_events_per_second_postgresql": 100,
                "p50_ok": max(sqlite["p50_ms"], pg["p50_ms"]) <= 1000,
                "throughput_ok": pg["events_per_second"] >= 100,
            }
        )
    )


if __name__ == "__main__":
    main()
