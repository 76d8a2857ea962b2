"""One whole widget voice call in a real headless Chromium, for test_widget_webrtc.py.

Run as a script so that it can run inside a loopback-only network namespace
(`unshare -n -- sh -c 'ip link set lo up && exec PYTHON webrtc_call_check.py ...'`): it starts
its own daphne (WEBRTC_HOST_ADDRESSES from --server-hosts), creates an assistant and a widget,
launches Chromium with a fake microphone asking "Where is the shop?", clicks start,
waits for the greeting to be heard and the answer ("Harbour") in the transcript, hangs up and reads
the stored call back from the API. Everything it starts is stopped by pid before it exits.

Prints one JSON line (`RESULT {...}`) and exits 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from liveserver import launch_chromium, start_server, synth_speech  # noqa: E402

QUESTION = "Where is the shop?"
GREETING = "Hi! How can I help?"
WIDGET = "document.querySelector('voice-widget')"


def transcript_turns(page) -> list[list[str]]:
    return page.evaluate(
        f"() => [...{WIDGET}.shadowRoot.querySelectorAll('.transcript li')].map(l =>"
        " [l.classList.contains('user') ? 'user' : 'assistant', l.lastChild.textContent])"
    )


def run(args, result: dict) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    work = Path(args.workdir or tempfile.mkdtemp(prefix="webrtc-check-"))
    wav = synth_speech(
        QUESTION,
        work / "question.wav",
        pad_before=args.pad_before,
        pad_after=8,
        speed=140,
        repeat_after=9,
    )
    env = {"WEBRTC_ENABLED": "1", "WEBRTC_HOST_ADDRESSES": args.server_hosts}
    server = start_server(var_dir=work / "var", extra_env=env)
    result["server_pid"] = server.proc.pid
    print(f"SERVER_PID {server.proc.pid}", flush=True)  # for the caller, should we be killed
    try:
        assistant = server.create_assistant(
            name="WebRTC check",
            starting_message=GREETING,
            speech={"tts": {"provider": "espeak", "options": {}}},
        )
        widget = server.create_widget(
            assistantId=assistant["id"], allowed_origins=[server.page_base]
        )
        extra = ["--allow-loopback-in-peer-connection"] if args.allow_loopback else []
        with sync_playwright() as pw:
            browser = launch_chromium(pw, fake_mic_wav=wav, extra_args=extra)
            try:
                page = browser.new_page()
                errors: list[str] = []
                socket_log: list[dict] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on(
                    "console",
                    lambda m: (
                        errors.append(f"console.{m.type}: {m.text}")
                        if m.type in ("error", "warning") and "404" not in m.text
                        else None
                    ),
                )

                def on_ws(ws):
                    def log(direction, payload):
                        if isinstance(payload, str):
                            try:
                                msg = json.loads(payload)
                            except ValueError:
                                return
                            socket_log.append({"dir": direction, "t": time.monotonic(), **msg})

                    ws.on("framesent", lambda p: log("out", p))
                    ws.on("framereceived", lambda p: log("in", p))

                page.on("websocket", on_ws)
                page.goto(server.demo_url(widget["id"]))
                page.wait_for_selector("voice-widget .start")
                if args.ice_timeout_ms:
                    page.evaluate(
                        f"(ms) => {WIDGET}.setAttribute('data-ice-timeout-ms', String(ms))",
                        args.ice_timeout_ms,
                    )
                if page.locator("voice-widget .accept-input").count():
                    page.click("voice-widget .accept-input")
                clicked = time.monotonic()
                page.click("voice-widget .start")

                def wait(what, js, timeout=60000):
                    try:
                        page.wait_for_function(js, timeout=timeout)
                    except PlaywrightTimeout as exc:
                        raise AssertionError(
                            f"timed out waiting for {what}; debug="
                            f"{page.evaluate(f'() => ({{...{WIDGET}.debug}})')} "
                            f"transcript={transcript_turns(page)}"
                        ) from exc

                wait("the audio transport to be chosen", f"() => !!{WIDGET}.debug.audio", 20000)
                result["chosen_after_click_s"] = round(time.monotonic() - clicked, 2)
                wait(
                    "the greeting to be heard",
                    f"() => {WIDGET}.debug.peakRms > 0.02 && {WIDGET}.debug.playedMs > 500",
                )
                result["greeting_heard_after_click_s"] = round(time.monotonic() - clicked, 2)
                wait(
                    "the answer in the transcript",
                    f"() => [...{WIDGET}.shadowRoot.querySelectorAll('.transcript li.assistant')]"
                    ".some(l => /harbou?r/i.test(l.textContent))",
                )
                greeting_ms = page.evaluate(f"() => {WIDGET}.debug.playedMs")
                try:
                    page.wait_for_function(
                        f"(ms) => {WIDGET}.debug.playedMs > ms + 1000",
                        arg=greeting_ms,
                        timeout=20000,
                    )
                    result["answer_heard"] = True
                except PlaywrightTimeout:
                    result["answer_heard"] = False
                debug = page.evaluate(f"() => ({{...{WIDGET}.debug}})")
                result["debug"] = debug
                # Mute: on WebRTC the microphone track is disabled (the peer sends silence).
                track_enabled = f"() => {WIDGET}._call.stream.getAudioTracks()[0].enabled"
                page.click("voice-widget .mute")
                result["track_enabled_muted"] = page.evaluate(track_enabled)
                page.click("voice-widget .mute")
                result["track_enabled_unmuted"] = page.evaluate(track_enabled)
                result["turns"] = transcript_turns(page)
                result["remote_audio_elements"] = page.evaluate(
                    f"() => {WIDGET}.shadowRoot.querySelectorAll('audio').length"
                )
                page.click("voice-widget .end")
                page.wait_for_function(f"() => {WIDGET}.debug.state === 'ended'", timeout=15000)
                result["mic_live_after_end"] = page.evaluate(f"() => {WIDGET}.debug.micLive")
                result["audio_elements_after_end"] = page.evaluate(
                    f"() => {WIDGET}.shadowRoot.querySelectorAll('audio').length"
                )
                result["page_errors"] = errors
            finally:
                browser.close()
        out = [m for m in socket_log if m["dir"] == "out"]
        inn = [m for m in socket_log if m["dir"] == "in"]
        t0 = socket_log[0]["t"] if socket_log else 0
        result["socket_first"] = [
            [m["dir"], m["type"], round(m["t"] - t0, 3)] for m in socket_log[:8]
        ]
        result["sent_types"] = [m["type"] for m in out][:6]
        result["received_types"] = [m["type"] for m in inn][:4]
        hellos = [m for m in out if m["type"] == "hello"]
        result["hello"] = hellos[0] if hellos else None
        answers = [m for m in inn if m["type"] == "webrtc.answer"]
        result["answer_candidates"] = [
            line for a in answers for line in a["sdp"].splitlines() if "candidate:" in line
        ]
        offers = [m for m in out if m["type"] == "webrtc.offer"]
        result["offer_candidates"] = [
            line.split(" ")[4]
            for o in offers
            for line in o["sdp"].splitlines()
            if line.startswith("a=candidate:")
        ]
        if offers and hellos:
            result["offer_to_hello_s"] = round(hellos[0]["t"] - offers[0]["t"], 2)

        call_id = result["debug"]["callId"]
        deadline = time.monotonic() + 20
        while True:
            call = server.api("GET", f"/calls/{call_id}", expect=200)["data"]
            if call["status"] == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        result["call"] = {k: call.get(k) for k in ("status_label", "transport", "end_reason")}
        entries = server.api("GET", f"/calls/{call_id}/transcripts", expect=200)["data"]
        result["stored_turns"] = [[e["role"], e["text"]] for e in entries["transcripts"]]
    finally:
        result["server_log_tail"] = server.log_text()[-3000:]
        server.stop()
        result["server_alive_after_stop"] = server.alive()


def checks(args, r: dict) -> list[str]:
    failed = []
    debug = r.get("debug") or {}

    def check(name, ok):
        if not ok:
            failed.append(name)

    check("debug.audio", debug.get("audio") == args.expect)
    check("hello", (r.get("hello") or {}).get("audio") == args.expect)
    check("stored transport", (r.get("call") or {}).get("transport") == args.expect)
    check("completed", (r.get("call") or {}).get("status_label") == "completed")
    stored = r.get("stored_turns") or []
    check("user turn stored", any(a == "user" and "shop" in t.lower() for a, t in stored))
    check("answer stored", any(a == "assistant" and "harbour" in t.lower() for a, t in stored))
    check("greeting heard", debug.get("peakRms", 0) > 0.02)
    check("answer heard", r.get("answer_heard") is True)
    check("micStartedAt", debug.get("micStartedAt", 0) > 0)
    check("replyStarts", len(debug.get("replyStarts") or []) >= 2)
    check("mic released", r.get("mic_live_after_end") is False)
    check("no audio element left", r.get("audio_elements_after_end") == 0)
    check("server stopped", r.get("server_alive_after_stop") is False)
    check("unmuted track enabled", r.get("track_enabled_unmuted") is True)
    check("mute", r.get("track_enabled_muted") is (args.expect == "websocket"))
    if args.expect == "webrtc":
        check("remote <audio> attached", r.get("remote_audio_elements") == 1)
        check("offer sent", "webrtc.offer" in (r.get("sent_types") or []))
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expect", choices=["webrtc", "websocket"], required=True)
    parser.add_argument("--server-hosts", default="127.0.0.1", help="WEBRTC_HOST_ADDRESSES")
    parser.add_argument("--allow-loopback", action="store_true")
    parser.add_argument("--ice-timeout-ms", type=int, default=0)
    parser.add_argument("--workdir", default="")
    parser.add_argument(
        "--pad-before", type=float, default=7.0, help="silence before the question (s)"
    )
    args = parser.parse_args()

    def terminated(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")  # unwinds the finally blocks: stops all

    signal.signal(signal.SIGTERM, terminated)
    result: dict = {"expect": args.expect}
    try:
        run(args, result)
        failed = checks(args, result)
    except Exception as exc:  # noqa: BLE001 (reported as the result)
        result["exception"] = "".join(traceback.format_exception(exc))[-4000:]
        failed = ["exception"]
    result["failed"] = failed
    result["ok"] = not failed
    print("RESULT " + json.dumps(result), flush=True)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
