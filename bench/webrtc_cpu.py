"""Server CPU per call-second for N concurrent WebRTC calls, and offer -> connected time.

A real daphne serves the calls; this process plays N browsers with aiortc client peers on
loopback (each sends 20 ms Opus frames of low noise, so the server decodes, resamples and runs
VAD, and nobody talks). The server's CPU time is read from /proc over a fixed window once every
call is connected; the clients' CPU is reported apart.

Usage: .venv/bin/python bench/webrtc_cpu.py [--calls 5,10,20] [--seconds 10]
Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.liveserver import start_server  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def one_call(
    server, assistant_id: str, connected_times: list, ready: asyncio.Event, stop: asyncio.Event
):
    import websockets
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
    from av import AudioFrame

    class NoiseTrack(MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.t = 0
            self.start = None
            self.rng = np.random.default_rng()

        async def recv(self):
            loop = asyncio.get_running_loop()
            if self.start is None:
                self.start = loop.time()
            else:
                self.t += 960
                await asyncio.sleep(max(0, self.start + self.t / 48000 - loop.time()))
            frame = AudioFrame(format="s16", layout="mono", samples=960)
            frame.planes[0].update((self.rng.normal(0, 30, 960)).astype(np.int16).tobytes())
            frame.pts, frame.sample_rate, frame.time_base = (
                self.t,
                48000,
                fractions.Fraction(1, 48000),
            )
            return frame

    async def drain(track):
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return

    call = server.api(
        "POST", "/calls/initiate", {"assistantId": assistant_id, "type": "web"}, expect=201
    )
    url = call["gateway"]["url"]
    async with websockets.connect(url, max_size=2**20) as ws:
        config = json.loads(await ws.recv())
        assert config["type"] == "webrtc.config", config
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTrack(NoiseTrack())
        drains = []
        pc.on("track", lambda track: drains.append(asyncio.ensure_future(drain(track))))
        connected = asyncio.Event()
        pc.on(
            "connectionstatechange",
            lambda: connected.set() if pc.connectionState == "connected" else None,
        )
        t0 = time.perf_counter()
        await pc.setLocalDescription(await pc.createOffer())
        await ws.send(json.dumps({"type": "webrtc.offer", "sdp": pc.localDescription.sdp}))
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "webrtc.answer":
                break
        await pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="answer"))
        await asyncio.wait_for(connected.wait(), 20)
        connected_times.append((time.perf_counter() - t0) * 1000)
        await ws.send(json.dumps({"type": "hello", "audio": "webrtc"}))
        while json.loads(await ws.recv())["type"] != "call.started":
            pass
        ready.set()

        async def consume():
            async for _ in ws:
                pass

        consumer = asyncio.ensure_future(consume())
        await stop.wait()
        await ws.send(json.dumps({"type": "end"}))
        consumer.cancel()
        await pc.close()
        for task in drains:
            task.cancel()


async def measure(server, assistant_id: str, n: int, seconds: float) -> dict:
    connected_times: list[float] = []
    readies = [asyncio.Event() for _ in range(n)]
    stop = asyncio.Event()
    tasks = [
        asyncio.ensure_future(one_call(server, assistant_id, connected_times, r, stop))
        for r in readies
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
    await asyncio.sleep(2)  # settle: decoders, VAD streams and pacing are running
    pid = server.proc.pid
    s0, c0, w0 = process_cpu_seconds(pid), own_cpu_seconds(), time.perf_counter()
    await asyncio.sleep(seconds)
    s1, c1, w1 = process_cpu_seconds(pid), own_cpu_seconds(), time.perf_counter()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    call_seconds = n * (w1 - w0)
    return {
        "calls": n,
        "server_cpu_ms_per_call_second": round((s1 - s0) * 1000 / call_seconds, 2),
        "clients_cpu_ms_per_call_second": round((c1 - c0) * 1000 / call_seconds, 2),
        "total_cpu_ms_per_call_second": round(((s1 - s0) + (c1 - c0)) * 1000 / call_seconds, 2),
        "offer_to_connected_ms_p50": round(statistics.median(connected_times), 1),
        "offer_to_connected_ms_max": round(max(connected_times), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", default="5,10,20")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    server = start_server(
        extra_env={"WEBRTC_HOST_ADDRESSES": "127.0.0.1", "WIDGET_CALL_RATE": "1000/min"}
    )
    try:
        assistant = server.create_assistant(starting_message="", silence_timeout_seconds=3600)
        results = []
        import aioice.ice

        # The client peers gather loopback only, like the server (aioice skips it otherwise).
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []
        asyncio.run(measure(server, assistant["id"], 1, 2.0))  # warm the models first
        for n in [int(x) for x in args.calls.split(",")]:
            results.append(asyncio.run(measure(server, assistant["id"], n, args.seconds)))
            print(json.dumps(results[-1]), flush=True)
    finally:
        server.stop()
    print(
        json.dumps(
            {
                "benchmark": "webrtc_cpu",
                "window_seconds": args.seconds,
                "results": results,
                "reference": "plain aiortc echo incl. its client peer: ~105 ms per call-second",
            }
        )
    )


if __name__ == "__main__":
    main()
