"""Warm start against a REAL daphne (`widgetsite.serve`, as `make run` starts it) with the
default offline stack (Silero, faster-whisper base, the knowledge engine's MiniLM, Piper):
the first call after the server starts gets `call.started` soon after `hello` (the models
were loaded before the port opened) and its greeting is heard.

The bound asserted is generous (a loaded 2-core machine); the figure is printed.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect

from tests.e2e.liveserver import LiveServer, start_server

pytestmark = pytest.mark.slow

GREETING = "Hello! Welcome to Acme Bikes. How can I help you?"
#: The goal is 300 ms; this bound survives a noisy machine (cold, it was 1.1-2.4 s).
HELLO_TO_STARTED_BOUND = 1.5


async def first_call(url: str) -> dict:
    """hello -> call.started, and the greeting's audio and transcript, on one call."""
    figures: dict = {"audio_bytes": 0, "greeting": []}
    async with connect(url, open_timeout=30, close_timeout=5) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert first["type"] == "webrtc.config", first
        sent = time.perf_counter()
        await ws.send(json.dumps({"type": "hello", "audio": "websocket"}))
        async with asyncio.timeout(60):
            while True:
                data = await ws.recv()
                if isinstance(data, bytes):
                    if "call_started_s" in figures and "first_audio_s" not in figures:
                        figures["first_audio_s"] = time.perf_counter() - sent
                    figures["audio_bytes"] += len(data)
                    continue
                message = json.loads(data)
                assert message["type"] not in ("error", "call.ended"), message
                if message["type"] == "call.started":
                    figures["call_started_s"] = time.perf_counter() - sent
                elif message["type"] == "transcript" and message["role"] == "assistant":
                    figures["greeting"].append(message["text"])
                elif message["type"] == "assistant.speech.stopped":
                    break
        await ws.send(json.dumps({"type": "end"}))
    return figures


def test_first_call_after_start_is_fast_and_its_greeting_is_heard(tmp_path):
    live: LiveServer = start_server(
        tmp_path / "var", extra_env={"WEBRTC_ENABLED": "0", "VOICE_WARM_START": "1"}
    )
    try:
        assistant = live.create_assistant(starting_message=GREETING)  # default speech
        body = live.api(
            "POST", "/calls/initiate", {"assistantId": assistant["id"], "type": "web"}, expect=201
        )
        figures = asyncio.run(first_call(body["gateway"]["url"]))
        log = live.log_text()
    finally:
        live.stop()
    print(
        f"\nfirst call after start: hello -> call.started {figures['call_started_s'] * 1000:.0f} ms,"
        f" -> first greeting audio {figures.get('first_audio_s', float('nan')) * 1000:.0f} ms"
    )
    warm = [line for line in log.splitlines() if "warm start:" in line]
    print("\n".join(warm))
    assert any("speech models ready" in line for line in warm), log
    assert figures["call_started_s"] <= HELLO_TO_STARTED_BOUND, figures
    # The greeting was spoken: its line, and at least a second of its audio (16 kHz PCM16).
    assert "Welcome to Acme Bikes" in " ".join(figures["greeting"]), figures
    assert figures["audio_bytes"] >= 32000, figures
