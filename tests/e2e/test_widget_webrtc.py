"""The widget's WebRTC audio in a real Chromium against the real server (aiortc).

Each call runs tests/e2e/webrtc_call_check.py in a subprocess (its own daphne and Chromium,
stopped by pid) and asserts on the JSON line it prints:

- over WebRTC inside a loopback-only network namespace (`unshare -n`, root): ICE may use
  nothing but 127.0.0.1 there, the machine's other interface does not exist;
- falling back to WebSocket audio when the server has no usable ICE candidate (its only host
  address is one this machine does not have, so aioice binds nothing and nothing is sent);
- falling back when ICE times out (namespace, Chromium without loopback candidates).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from liveserver import CHROMIUM, ROOT, have_speech_tools

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHECK = Path(__file__).resolve().parent / "webrtc_call_check.py"
RUN_TIMEOUT_S = 180
# An address on no interface here (TEST-NET-3): aioice cannot bind it, so the answer has no
# candidates and no connectivity check is ever sent anywhere.
UNBINDABLE = "203.0.113.1"


@pytest.fixture(scope="module", autouse=True)
def tools():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (Debian package `chromium`)")
    if not have_speech_tools():
        pytest.skip(
            "espeak-ng and sox are needed to make the test speech (make test installs them)"
        )


def netns_unavailable() -> str | None:
    """Why a loopback-only network namespace cannot be made here (None when it can)."""
    if os.geteuid() != 0:
        return "a loopback-only network namespace (unshare -n) needs root"
    if not (shutil.which("unshare") and shutil.which("ip")):
        return "unshare (util-linux) and ip (iproute2) are needed for a network namespace"
    try:
        probe = subprocess.run(
            ["unshare", "-n", "--", "sh", "-c", "ip link set lo up && ip -o addr show"],
            capture_output=True,
            text=True,
            timeout=15,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare -n failed: {exc}"
    if probe.returncode != 0:
        return f"unshare -n failed ({probe.returncode}): {probe.stderr.strip()[:300]}"
    devices = {line.split()[1] for line in probe.stdout.splitlines() if line.strip()}
    if devices != {"lo"}:
        return f"the new network namespace is not loopback-only: {sorted(devices)}"
    return None


@pytest.fixture(scope="module")
def netns():
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)


def leftovers(marker: str) -> list[int]:
    """Pids of processes whose command line mentions `marker` (the run's work directory)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            pids.append(int(entry.name))
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        return (Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]) != "Z"
    except OSError:
        return False


def run_check(workdir: Path, *args: str, in_netns: bool) -> dict:
    """Runs the check (in a loopback-only namespace when asked); stops all it left behind."""
    cmd = [sys.executable, str(CHECK), "--workdir", str(workdir), *args]
    if in_netns:
        cmd = ["unshare", "-n", "--", "sh", "-c", f"ip link set lo up && exec {shlex.join(cmd)}"]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the check stops its server and browser on SIGTERM
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        output += f"\n[killed after {RUN_TIMEOUT_S} s]"
    elapsed = time.monotonic() - started
    # Whatever is still running is stopped by its pid (the namespace goes with its last process).
    stray = []
    for line in output.splitlines():
        if line.startswith("SERVER_PID "):
            pid = int(line.split()[1])
            if alive(pid):
                stray.append(pid)
                os.killpg(pid, signal.SIGKILL)
    for pid in leftovers(str(workdir)):
        if alive(pid):
            stray.append(pid)
            os.kill(pid, signal.SIGKILL)
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    result = json.loads(lines[-1][len("RESULT ") :]) if lines else {"ok": False}
    result["_output"] = output[-6000:]
    result["_elapsed_s"] = round(elapsed, 1)
    result["_stray_pids"] = stray
    return result


@pytest.fixture
def keep(artifacts_dir, request):
    """keep(result): the run's result goes to test-artifacts/<test name>.json for later study."""

    def save(result: dict) -> dict:
        path = Path(artifacts_dir) / f"{request.node.name}.json"
        path.write_text(json.dumps(result, indent=1))
        return result

    return save


def explain(result: dict) -> str:
    shown = {k: v for k, v in result.items() if k not in ("_output", "server_log_tail")}
    return (
        f"check failed: {result.get('failed')}\nresult: {json.dumps(shown, indent=1)}\n"
        f"server log tail:\n{result.get('server_log_tail', '')}\noutput:\n{result['_output']}"
    )


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
def test_voice_call_over_webrtc_in_a_loopback_only_namespace(netns, tmp_path, keep):
    r = keep(run_check(tmp_path, "--expect", "webrtc", "--allow-loopback", in_netns=True))
    assert r.get("ok"), explain(r)
    assert not r["_stray_pids"], explain(r)
    debug = r["debug"]
    assert debug["audio"] == "webrtc" and debug["rtcResult"] == "connected", explain(r)
    assert r["call"]["transport"] == "webrtc", explain(r)
    # ICE used loopback only (there is nothing else in the namespace, and nothing else offered).
    assert r["offer_candidates"] and set(r["offer_candidates"]) == {"127.0.0.1"}, explain(r)
    assert r["answer_candidates"] and all(" 127.0.0.1 " in c for c in r["answer_candidates"])
    # Offer -> connected well within the fallback timeout.
    assert debug["rtcConnectMs"] < 2000, explain(r)
    # The assistant was heard through the remote track (<audio> + meter), twice at least.
    assert debug["peakRms"] > 0.02 and len(debug["replyStarts"]) >= 2, explain(r)
    assert 0 < debug["micStartedAt"] < debug["replyStarts"][0], explain(r)
    assert r["sent_types"][:2] == ["webrtc.offer", "hello"], explain(r)
    assert "playback" not in r["sent_types"], explain(r)  # the server holds the playout buffer


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
def test_no_usable_ice_candidate_falls_back_to_websocket_audio(tmp_path, keep):
    with socket.socket() as s:
        try:
            s.bind((UNBINDABLE, 0))
        except OSError:
            pass
        else:
            pytest.skip(f"{UNBINDABLE} is an address of this machine: cannot make ICE fail")
    r = keep(
        run_check(
            tmp_path,
            "--expect",
            "websocket",
            "--server-hosts",
            UNBINDABLE,
            "--pad-before",
            "9",
            in_netns=False,
        )
    )
    assert r.get("ok"), explain(r)
    assert not r["_stray_pids"], explain(r)
    assert r["answer_candidates"] == [], explain(r)  # nothing could have been sent anywhere
    debug = r["debug"]
    assert debug["rtcResult"] == "no-candidates" and debug["audio"] == "websocket", explain(r)
    assert r["offer_to_hello_s"] < 1.5, explain(r)
    assert r["call"]["transport"] == "websocket", explain(r)
    assert r["sent_types"][:2] == ["webrtc.offer", "hello"], explain(r)
    assert "playback" in r["sent_types"], explain(r)  # WebSocket audio is reported as heard


@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
def test_ice_that_never_connects_falls_back_after_the_timeout(netns, tmp_path, keep):
    # In the namespace Chromium without --allow-loopback-in-peer-connection has no candidate
    # at all: the server's loopback candidate cannot be paired, ICE stays unconnected.
    r = keep(
        run_check(
            tmp_path,
            "--expect",
            "websocket",
            "--ice-timeout-ms",
            "2500",
            "--pad-before",
            "9",
            in_netns=True,
        )
    )
    assert r.get("ok"), explain(r)
    assert not r["_stray_pids"], explain(r)
    debug = r["debug"]
    assert debug["rtcResult"].startswith("ice-") and debug["audio"] == "websocket", explain(r)
    assert r["offer_candidates"] == [] and r["answer_candidates"], explain(r)
    assert 2.4 <= r["offer_to_hello_s"] <= 3.5, explain(r)
    assert r["call"]["transport"] == "websocket", explain(r)
