"""The backbone with real processes: daphne and the real job worker (`manage.py worker`).

- On SQLite (the `make run` default): a call's events reach a webhook receiver through the
  worker, signed, and the worker's periodic reaper ends a call nobody connected to.
- On PostgreSQL, nothing is lost under faults: a receiver that answers slowly and fails about
  30% of requests, 200 events, the worker killed with SIGKILL 20 times at random moments and
  restarted each time. Every event is delivered at least once (the receiver saw every
  webhook-id), none is left pending, and the duplicates are counted and reported.
"""

from __future__ import annotations

import random
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "e2e"))

from liveserver import fresh_postgres_database, start_server, wait_for  # noqa: E402

from tests.webhooks.receiver import Answer, Receiver  # noqa: E402

pytestmark = pytest.mark.slow

# Fast clocks for the tests: the retry schedule in seconds, a short job lease and token TTL.
FAST = {
    "WEBHOOK_ALLOW_HTTP": "1",
    "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
    "WEBHOOK_RETRY_SCHEDULE_SECONDS": "1,2,3,5,8,13,21",
    "JOBS_TIMEOUT_SECONDS": "10",
    "JOBS_RETRY_SECONDS": "12",
    "WEBRTC_ENABLED": "0",
}


def light_assistant(server) -> dict:
    return server.create_assistant(
        speech={"vad": {"provider": "webrtc"}, "tts": {"provider": "espeak"}}
    )


def subscribe(server, url: str, events: list[str]) -> str:
    created = server.api("POST", "/webhooks", {"url": url, "events": events}, expect=201)
    return created["data"]


def test_worker_delivers_call_events_and_reaps_a_call_nobody_joined(tmp_path):
    server = start_server(extra_env={**FAST, "CALL_TOKEN_TTL_SECONDS": "5"})
    try:
        with Receiver() as receiver:
            endpoint = subscribe(server, receiver.url, ["call.created", "call.ended"])
            receiver.secrets.append(endpoint["secret"])
            worker = server.start_worker()
            assistant = light_assistant(server)
            call = server.api(
                "POST", "/calls/initiate", {"assistantId": assistant["id"], "type": "web"}, 201
            )
            call_id = call["callId"]

            def seen(kind: str):
                return [r for r in receiver.received if r.json["type"] == kind]

            created = wait_for(lambda: seen("call.created"), 30, "call.created at the receiver")
            assert created[0].json["data"]["call_id"] == call_id
            assert created[0].verified_by == [0]  # signed with the endpoint's secret
            # Nobody connects: the token expires, the worker's reaper ends the call once.
            ended = wait_for(lambda: seen("call.ended"), 90, "call.ended from the reaper")
            assert ended[0].json["data"]["end_reason"] == "never_connected"
            assert ended[0].json["data"]["status"] == "failed"
            detail = server.api("GET", f"/calls/{call_id}", expect=200)["data"]
            assert detail["status_label"] == "failed"
            assert detail["end_reason"] == "never_connected"
            time.sleep(2)
            assert len(seen("call.ended")) == 1
            assert worker.poll() is None
    finally:
        server.stop()


@pytest.fixture(scope="module")
def postgres_url():
    with fresh_postgres_database() as url:
        yield url


@pytest.mark.timeout(660)  # the wait below gives up at 300 s and explains what is left
def test_no_event_is_lost_when_the_worker_is_killed_20_times(postgres_url, tmp_path):
    rng = random.Random(9)
    server = start_server(extra_env={**FAST, "DATABASE_URL": postgres_url, "JOBS_WORKERS": "2"})

    def flaky(received) -> Answer:
        time.sleep(rng.uniform(0.05, 0.4))  # slow
        return Answer(status=500) if rng.random() < 0.3 else Answer(status=200)

    try:
        with Receiver(decide=flaky) as receiver:
            endpoint = subscribe(server, receiver.url, ["call.created"])
            receiver.secrets.append(endpoint["secret"])
            assistant = light_assistant(server)
            worker = server.start_worker()
            call_ids = []
            kills = 0
            next_kill = time.monotonic() + rng.uniform(0.5, 2.0)
            # 200 events while the worker is killed and restarted 20 times.
            while len(call_ids) < 200 or kills < 20:
                if len(call_ids) < 200:
                    body = {"assistantId": assistant["id"], "type": "web"}
                    call_ids.append(server.api("POST", "/calls/initiate", body, 201)["callId"])
                    time.sleep(0.02)
                else:
                    time.sleep(0.1)
                if kills < 20 and time.monotonic() >= next_kill:
                    server.stop_worker(worker, signal.SIGKILL)
                    kills += 1
                    worker = server.start_worker()
                    next_kill = time.monotonic() + rng.uniform(0.5, 3.0)

            expected = set(call_ids)
            produced_at = time.monotonic()

            def delivered_calls() -> set[str]:
                ok = [r for r in receiver.received if r.status == 200 and r.verified_by]
                return {r.json["data"]["call_id"] for r in ok}

            def deliveries(status: str) -> int:
                path = f"/webhooks/{endpoint['id']}/deliveries?status={status}&limit=1"
                return server.api("GET", path, expect=200)["meta"]["total"]

            # Done when the receiver has every event AND no row is left pending: a worker
            # killed between the receiver's 200 and its own write leaves a delivered event
            # pending, and it is sent again (at least once).
            try:
                wait_for(
                    lambda: expected <= delivered_calls() and deliveries("pending") == 0,
                    300,
                    "every event delivered and no delivery pending",
                    1.0,
                )
            except AssertionError as timed_out:
                missing = expected - delivered_calls()
                stuck = server.api(
                    "GET", f"/webhooks/{endpoint['id']}/deliveries?limit=100", expect=200
                )["data"]
                late = [d for d in stuck if d["status"] != "delivered"]
                counts = {s: deliveries(s) for s in ("pending", "delivered", "failed")}
                raise AssertionError(
                    f"{len(missing)} events not delivered; deliveries by status {counts}; "
                    f"undelivered: {late[:5]}; worker logs: {server.worker_log_tail(1500)}"
                ) from timed_out
            assert deliveries("failed") == 0
            ids = [r.headers["webhook-id"] for r in receiver.received if r.status == 200]
            duplicates = len(ids) - len(set(ids))
            print(
                f"\nfault test: {len(expected)} events, {kills} SIGKILLs, all delivered "
                f"{time.monotonic() - produced_at:.0f} s after the last kill, "
                f"{len(receiver.received)} requests, {len(set(ids))} delivered, "
                f"{duplicates} duplicate deliveries (at least once; dedupe by webhook-id)"
            )
            assert len(set(ids)) == len(expected)
            assert all(r.verified_by for r in receiver.received)
    finally:
        server.stop()
