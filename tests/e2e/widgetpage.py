"""Helpers to read and drive <voice-widget> (open Shadow DOM) in a Playwright page."""

from __future__ import annotations

import json
import math
import struct
import threading

WIDGET = "document.querySelector('voice-widget')"
HOSTILE_TEXT = "<img src=x onerror=alert(1)>"


def shadow(page, body: str, arg=None):
    """Evaluates `body` (a function body with `root` = the widget's shadow root and `arg`)."""
    return page.evaluate(
        f"(arg) => {{ const root = {WIDGET}.shadowRoot; {body} }}",
        arg,
    )


def computed(page, selector: str) -> dict:
    return shadow(
        page,
        """
        const e = root.querySelector(arg);
        if (!e) return null;
        const s = getComputedStyle(e);
        return {bg: s.backgroundColor, color: s.color, border: s.borderTopColor,
                radius: s.borderTopLeftRadius, outlineColor: s.outlineColor,
                outlineStyle: s.outlineStyle, outlineWidth: s.outlineWidth,
                text: e.textContent, disabled: !!e.disabled, hidden: e.hidden,
                display: s.display};
        """,
        selector,
    )


def active_matches(page, selector: str) -> bool:
    return shadow(page, "const a = root.activeElement; return !!a && a.matches(arg);", selector)


def tab_to(page, selector: str, max_tabs: int = 12) -> None:
    for _ in range(max_tabs):
        page.keyboard.press("Tab")
        if active_matches(page, selector):
            return
    raise AssertionError(f"Tab never reached {selector} inside the widget")


def status_text(page) -> str:
    return shadow(page, "return root.querySelector('[aria-live=polite].status').textContent;")


def message_text(page) -> str:
    return shadow(page, "return root.querySelector('.message').textContent;")


def debug(page) -> dict:
    return page.evaluate(f"() => ({{...{WIDGET}.debug}})")


def wait_state(page, state: str, timeout: float = 20000) -> None:
    page.wait_for_function(f"(s) => {WIDGET}?.debug?.state === s", arg=state, timeout=timeout)


def record_live_region(page) -> None:
    """Starts recording every text the aria-live status region shows (window.__announced)."""
    shadow(
        page,
        """
        const live = root.querySelector('[aria-live=polite].status');
        window.__announced = [live.textContent];
        new MutationObserver(() => window.__announced.push(live.textContent))
          .observe(live, {childList: true, characterData: true, subtree: true});
        return true;
        """,
    )


def hex_to_rgb(value: str) -> str:
    v = value.lstrip("#")
    if len(v) == 3:
        v = "".join(c * 2 for c in v)
    r, g, b = (int(v[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgb({r}, {g}, {b})"


def sine_frames(seconds: float, freq: float = 440.0, amp: float = 0.3, rate: int = 16000):
    """PCM16 mono 20 ms frames of a sine tone."""
    n = int(seconds * rate)
    samples = [int(amp * 32767 * math.sin(2 * math.pi * freq * i / rate)) for i in range(n)]
    data = struct.pack(f"<{n}h", *samples)
    return [data[i : i + 640] for i in range(0, len(data), 640)]


class MockGateway:
    """Plays the server side of the call socket inside Playwright (page.route_web_socket)."""

    PATTERN = "**/new-web-call/connection*"

    def __init__(self, page, *, on_hello=None, on_text=None, on_open=None):
        self.ws = None
        self.texts: list[dict] = []
        self.frames: list[bytes] = []
        self.url = None
        self.lock = threading.Lock()
        self.on_hello = on_hello
        self.on_text = on_text
        self.on_open = on_open
        page.route_web_socket(self.PATTERN, self._handler)

    def _handler(self, ws):
        self.ws = ws
        self.url = ws.url
        ws.on_message(self._message)
        if self.on_open:
            self.on_open(self)

    def _message(self, message):
        if isinstance(message, bytes | bytearray):
            self.frames.append(bytes(message))
            return
        msg = json.loads(message)
        self.texts.append(msg)
        if msg.get("type") == "hello" and self.on_hello:
            self.on_hello(self)
        if self.on_text:
            self.on_text(self, msg)

    def send(self, obj) -> None:
        self.ws.send(obj if isinstance(obj, bytes | str) else json.dumps(obj))

    def start_call(self) -> None:
        self.send(
            {"type": "call.started", "call_id": "x", "sample_rate": 16000, "audio": "websocket"}
        )
        self.send({"type": "state", "state": "listening"})

    def of_type(self, kind: str) -> list[dict]:
        return [m for m in self.texts if m.get("type") == kind]


def answering_gateway(page) -> dict:
    """A mock call socket that starts the call on hello and ends it on end."""
    holder = {}

    def script(gw, msg):
        if msg["type"] == "hello":
            gw.start_call()
        elif msg["type"] == "end":
            gw.send({"type": "call.ended", "reason": "hangup"})
            gw.ws.close(code=1000)

    holder["gw"] = MockGateway(page, on_text=script)
    return holder


def transcript_lines(page) -> list[tuple[str, str]]:
    """The widget's transcript as (role, text) pairs."""
    return [
        tuple(row)
        for row in shadow(
            page,
            "return [...root.querySelectorAll('.transcript li')].map(l =>"
            " [l.classList.contains('user') ? 'user' : 'assistant',"
            " l.querySelector('.text').textContent]);",
        )
    ]


def wait_widget(page, what: str, js: str, *, arg=None, timeout: float = 60000) -> None:
    """page.wait_for_function that says what the widget was doing on a time-out."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function(js, arg=arg, timeout=timeout)
    except PlaywrightTimeout as exc:
        raise AssertionError(
            f"timed out waiting for {what}; widget debug={debug(page)} "
            f"message={message_text(page)!r} transcript={transcript_lines(page)}"
        ) from exc
