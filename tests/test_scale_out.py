"""Scale-out: two daphne workers on one PostgreSQL database and one Redis.

A call created through worker A is joined on worker B's socket, runs there, and is read back
completed through worker A; worker A's reaper leaves B's live call alone (fresh heartbeats).
Skips, saying why, when PostgreSQL or Redis does not answer on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "e2e"))

from liveserver import LiveServer, free_port, fresh_postgres_database  # noqa: E402

pytestmark = pytest.mark.slow

REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture(scope="module")
def database_url():
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"Redis ({REDIS}) not reachable: {exc}")
    with fresh_postgres_database("vw_scaleout") as url:
        yield url


@pytest.fixture(scope="module")
def workers(database_url):
    shared = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1",
        "WEBRTC_ENABLED": "0",
        "VOICE_MODEL_DIR": str(Path(__file__).resolve().parents[1] / "var" / "models"),
    }
    started = []
    try:
        for _ in range(2):
            var_dir = Path(tempfile.mkdtemp(prefix="scaleout-"))
            env = {**shared, "VAR_DIR": str(var_dir)}
            env.pop("DJANGO_SECRET_KEY_FILE", None)
            started.append(LiveServer(port=free_port(), var_dir=var_dir, env=env).start())
        yield started
    finally:
        for server in started:
            server.stop()


async def run_call_on(url: str) -> list[dict]:
    import websockets

    seen = []
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "hello", "audio": "websocket"}))
        async with asyncio.timeout(60):
            while True:
                message = await ws.recv()
                if isinstance(message, bytes):
                    continue
                seen.append(json.loads(message))
                last = seen[-1]
                if last["type"] == "transcript" and last["role"] == "assistant" and last["final"]:
                    break
            await ws.send(json.dumps({"type": "end"}))
            async for message in ws:
                if isinstance(message, str):
                    seen.append(json.loads(message))
    return seen


async def first_message(url: str) -> dict:
    import websockets

    async with websockets.connect(url) as ws:
        return json.loads(await asyncio.wait_for(ws.recv(), 10))


def test_call_created_on_one_worker_runs_on_another_and_is_read_back(workers):
    a, b = workers
    assistant = a.create_assistant(
        starting_message="Hello from the cluster.",
        speech={
            "tts": {"provider": "espeak", "options": {}},
            "vad": {"provider": "webrtc", "options": {}},
        },
    )
    created = a.api(
        "POST", "/calls/initiate", {"assistantId": assistant["id"], "type": "web"}, expect=201
    )
    # Join on worker B: same path and token, B's host and port.
    url = created["gateway"]["url"].replace(f":{a.port}/", f":{b.port}/")
    seen = asyncio.run(run_call_on(url))
    kinds = [m["type"] for m in seen]
    assert "call.started" in kinds and kinds[-1] == "call.ended", kinds
    greeting = next(m for m in seen if m["type"] == "transcript" and m["final"])
    assert greeting["text"] == "Hello from the cluster."

    deadline = time.monotonic() + 15
    while True:
        call = a.api("GET", f"/calls/{created['callId']}", expect=200)["data"]
        if call["status_label"] == "completed" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert call["status_label"] == "completed" and call["end_reason"] == "hangup", call
    transcript = a.api("GET", f"/calls/{created['callId']}/transcripts", expect=200)["data"]
    assert [t["text"] for t in transcript["transcripts"]] == ["Hello from the cluster."]
    # The token was single-use across workers too.
    refusal = asyncio.run(first_message(created["gateway"]["url"]))
    assert refusal["type"] == "error" and refusal["code"] == 4409, refusal
    assert a.alive() and b.alive()


# --- The live transcript socket and end/cancel across workers ---


def cluster_assistant(a) -> dict:
    return a.create_assistant(
        starting_message="Hello from the cluster.",
        speech={
            "tts": {"provider": "espeak", "options": {}},
            "vad": {"provider": "webrtc", "options": {}},
        },
    )


async def follow(url: str) -> tuple[list[dict], int | None]:
    """A live subscriber: every message until the server closes, and the close code."""
    import websockets

    seen = []
    async with websockets.connect(url) as ws:
        async with asyncio.timeout(90):
            async for message in ws:
                seen.append(json.loads(message))
        return seen, ws.close_code


async def call_until_greeted(url: str):
    """The caller's socket, open, after hello and the greeting."""
    import websockets

    ws = await websockets.connect(url)
    await ws.send(json.dumps({"type": "hello", "audio": "websocket"}))
    async with asyncio.timeout(60):
        while True:
            message = await ws.recv()
            if isinstance(message, str):
                last = json.loads(message)
                if last["type"] == "transcript" and last["role"] == "assistant" and last["final"]:
                    return ws


async def rest_of_call(ws) -> list[dict]:
    seen = []
    async with asyncio.timeout(60):
        async for message in ws:
            if isinstance(message, str):
                seen.append(json.loads(message))
    return seen


def test_subscriber_on_one_worker_follows_a_call_running_on_another(workers):
    a, b = workers
    assistant = cluster_assistant(a)
    created = a.api(
        "POST", "/calls/initiate", {"assistantId": assistant["id"], "type": "web"}, expect=201
    )
    live = b.api("GET", f"/calls/{created['callId']}/live", expect=200)["data"]
    assert live["websocket_url"].startswith(f"ws://127.0.0.1:{b.port}/ws/calls/")
    subscriber_url = f"{live['websocket_url']}?session_token={live['temp_token']}"

    async def scenario():
        subscriber = asyncio.create_task(follow(subscriber_url))
        await asyncio.sleep(0.5)  # subscribed (connected) before the call starts on A
        caller = await run_call_on(created["gateway"]["url"])
        return await subscriber, caller

    (seen, code), _ = asyncio.run(scenario())
    assert code == 1000, seen
    assert seen[0]["type"] == "connected" and seen[0]["data"]["status"] == "queued"
    lines = [m["data"]["text"] for m in seen if m["type"] == "transcript_update"]
    assert lines == ["Hello from the cluster."]
    assert seen[-1]["type"] == "call_status_update"
    assert seen[-1]["data"]["status"] == "completed" and seen[-1]["data"]["end_reason"] == "hangup"
    seqs = [m["data"]["event_seq"] for m in seen[1:]]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs  # every event, in order


@pytest.mark.parametrize(
    "action, status, reason", [("end", "completed", "api_end"), ("cancel", "failed", "canceled")]
)
def test_end_and_cancel_sent_through_one_worker_stop_the_call_running_on_another(
    workers, action, status, reason
):
    a, b = workers
    assistant = cluster_assistant(a)
    created = a.api(
        "POST", "/calls/initiate", {"assistantId": assistant["id"], "type": "web"}, expect=201
    )

    async def scenario():
        ws = await call_until_greeted(created["gateway"]["url"])  # runs on worker A
        answer = await asyncio.to_thread(
            b.api, "POST", f"/calls/{created['callId']}/{action}", None, 202
        )
        return answer, await rest_of_call(ws), ws.close_code

    answer, seen, code = asyncio.run(scenario())
    assert answer["status"] is True and answer["data"]["id"] == created["callId"]
    assert {"type": "call.ended", "reason": reason} in seen and code == 1000, seen
    goodbye = [m["text"] for m in seen if m["type"] == "transcript" and m.get("final")]
    assert (goodbye == ["Thank you for calling. Goodbye!"]) == (action == "end"), goodbye
    call = a.api("GET", f"/calls/{created['callId']}", expect=200)["data"]
    assert call["status_label"] == status and call["end_reason"] == reason, call
    assert a.alive() and b.alive()
