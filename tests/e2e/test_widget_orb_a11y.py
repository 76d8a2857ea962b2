"""The live voice orb, the silent-microphone hint and accessibility (issue 12), in a real
Chromium. The call socket is played by a mock inside Playwright (create-call is the real
server's) except in the spoken test, where the real server listens and answers aloud.

axe-core comes from npm (tests/e2e/js, installed by `make install-test` with `npm ci`) and is
injected into the page from the local file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from liveserver import have_speech_tools, launch_chromium, synth_speech
from widgetpage import (
    WIDGET,
    MockGateway,
    answering_gateway,
    shadow,
    sine_frames,
    wait_state,
)

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent / "js" / "node_modules" / "axe-core" / "axe.min.js"
SILENT_MIC_TEXT = "We can't hear you."

# Every change of the orb's state and level (the orb appears when a call starts).
RECORD_ORB = """() => {
  const root = document.querySelector('voice-widget').shadowRoot;
  window.__orb = [];
  new MutationObserver((records) => {
    for (const r of records) {
      const o = r.target;
      if (o.classList && o.classList.contains('orb')) {
        window.__orb.push([o.dataset.state, Number(o.dataset.level || 0), o.dataset.active]);
      }
    }
  }).observe(root, {subtree: true, attributes: true,
                    attributeFilter: ['data-state', 'data-level', 'data-active']});
}"""


def open_host_page(browser, server, widget_id, *, attrs="", setup=None, reduced_motion=None):
    """A page of the 127.0.0.1 origin embedding the widget from localhost (as
    test_widget_embed.py's host_page does), in `browser`."""
    context = browser.new_context(
        permissions=["microphone"], viewport={"width": 1280, "height": 800}
    )
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    if reduced_motion:
        page.emulate_media(reduced_motion=reduced_motion)
    if setup:
        setup(page)
    page.goto(f"{server.page_base}/demo/?widget=none")
    src = f"{server.widget_base}/static/widget/embed.js"
    page.set_content(
        "<!doctype html><html lang=en><head><meta name=viewport content='width=device-width'>"
        "<title>Host page</title></head><body><main><h1>Host page</h1>"
        "<p>The host page's own content.</p>"
        f'<script src="{src}" data-widget-id="{widget_id}" {attrs} async></script>'
        "</main></body></html>"
    )
    page.wait_for_function(
        f"() => {WIDGET}?.shadowRoot?.querySelector('.card') &&"
        " performance.getEntriesByName('voice-widget:first-paint').length > 0"
    )
    return context, page


def orb(page) -> dict | None:
    return shadow(
        page,
        """
        const o = root.querySelector('.orb');
        if (!o) return null;
        const s = getComputedStyle(o);
        return {state: o.dataset.state, level: Number(o.dataset.level || 0),
                active: o.dataset.active, transform: s.transform,
                animation: s.animationName, hidden: o.getAttribute('aria-hidden')};
        """,
    )


def wait_orb(page, js_condition: str, timeout: float = 15000) -> None:
    page.wait_for_function(
        f"() => {{ const o = {WIDGET}.shadowRoot.querySelector('.orb');"
        f" return !!o && ({js_condition}); }}",
        timeout=timeout,
    )


def status(page) -> str:
    return shadow(page, "return root.querySelector('.status').textContent;")


def shot(page, path: Path) -> None:
    """A screenshot of the widget's card (the orb and the state line)."""
    page.locator("voice-widget .card").screenshot(path=str(path))


@pytest.fixture
def pages():
    contexts = []
    yield contexts
    for context in contexts:
        context.close()


# ---- the orb ---------------------------------------------------------------------------


def test_orb_follows_the_microphone_the_reply_and_shows_thinking(
    chromium, daphne_server, make_widget, pages, artifacts_dir
):
    widget = make_widget(placement="inline", call_to_action="Talk to Acme")
    holder = {}
    context, page = open_host_page(
        chromium, daphne_server, widget["id"], setup=lambda p: holder.update(answering_gateway(p))
    )
    pages.append(context)
    assert shadow(page, "return !!root.querySelector('.orb');") is False  # not before a call
    page.click("voice-widget .start")
    wait_state(page, "listening")
    gw = holder["gw"]
    # Listening: the fake microphone's beeps move the orb.
    wait_orb(page, "o.dataset.state === 'listening' && Number(o.dataset.level) > 0.3")
    got = orb(page)
    assert got["hidden"] == "true"  # the state line says it in words
    assert got["transform"] != "none"
    assert status(page) == "Listening"
    shot(page, artifacts_dir / "widget-orb-listening.png")

    gw.send({"type": "state", "state": "thinking"})
    wait_orb(page, "o.dataset.state === 'thinking'")
    assert status(page) == "Thinking…"
    assert orb(page)["animation"] == "vw-think"
    wait_orb(page, "Number(o.dataset.level) === 0")  # no level while thinking
    shot(page, artifacts_dir / "widget-orb-thinking.png")

    # Speaking: the assistant's audio (a tone over the socket) moves it.
    gw.send({"type": "state", "state": "speaking"})
    for frame in sine_frames(2.5, amp=0.4):
        gw.send(frame)
    wait_orb(page, "o.dataset.state === 'speaking' && Number(o.dataset.level) > 0.3")
    assert status(page) == "Speaking"
    assert orb(page)["animation"] == "none"
    shot(page, artifacts_dir / "widget-orb-speaking.png")
    # When the reply is over the orb settles.
    wait_orb(page, "Number(o.dataset.level) === 0", timeout=10000)

    page.click("voice-widget .end")
    wait_state(page, "ended")
    assert orb(page) is None  # the orb goes with the call
    assert not page.errors


def test_orb_honours_prefers_reduced_motion(
    chromium, daphne_server, make_widget, pages, artifacts_dir
):
    widget = make_widget(placement="inline")
    holder = {}
    context, page = open_host_page(
        chromium,
        daphne_server,
        widget["id"],
        setup=lambda p: holder.update(answering_gateway(p)),
        reduced_motion="reduce",
    )
    pages.append(context)
    page.click("voice-widget .start")
    wait_state(page, "listening")
    # The level is still shown, as a static ring (data-active), never as movement.
    wait_orb(page, "o.dataset.active === 'true' && Number(o.dataset.level) > 0.3")
    got = orb(page)
    assert got["transform"] == "none" and got["animation"] == "none"
    ring = shadow(page, "return getComputedStyle(root.querySelector('.orb')).boxShadow;")
    assert ring and ring != "none"
    shot(page, artifacts_dir / "widget-orb-reduced-motion.png")
    holder["gw"].send({"type": "state", "state": "thinking"})
    wait_orb(page, "o.dataset.state === 'thinking'")
    got = orb(page)
    assert got["transform"] == "none" and got["animation"] == "none"
    assert status(page) == "Thinking…"
    page.click("voice-widget .end")
    wait_state(page, "ended")
    assert not page.errors


@pytest.fixture(scope="module")
def spoken_question(tmp_path_factory):
    if not have_speech_tools():
        pytest.skip(
            "espeak-ng and sox are needed to make the test speech (make test installs them)"
        )
    return synth_speech(
        "Where is the shop?",
        tmp_path_factory.mktemp("orb-speech") / "question.wav",
        pad_before=5,
        pad_after=8,
        speed=140,
    )


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_orb_reacts_to_real_speech_and_the_spoken_reply(
    playwright_session, daphne_server, spoken_question, pages
):
    assistant = daphne_server.create_assistant(
        name="Orb voice",
        starting_message="Hi! How can I help?",
        speech={"tts": {"provider": "espeak", "options": {}}},
    )
    widget = daphne_server.create_widget(
        assistantId=assistant["id"], allowed_origins=[daphne_server.page_base]
    )
    browser = launch_chromium(playwright_session, fake_mic_wav=spoken_question)
    try:
        context, page = open_host_page(browser, daphne_server, widget["id"])
        pages.append(context)
        page.evaluate(RECORD_ORB)
        page.click("voice-widget .start")
        # The greeting moves the orb while speaking, the question while listening, and
        # the answer while speaking again.
        page.wait_for_function(
            "() => window.__orb.some(([s, l]) => s === 'speaking' && l > 0.3)", timeout=60000
        )
        page.wait_for_function(
            "() => window.__orb.some(([s, l]) => s === 'listening' && l > 0.3)", timeout=60000
        )
        page.wait_for_function(
            f"() => [...{WIDGET}.shadowRoot.querySelectorAll('.transcript li.assistant')]"
            ".length >= 2",
            timeout=60000,
        )
        page.wait_for_function(
            "() => { const i = window.__orb.findIndex(([s, l]) => s === 'listening' && l > 0.3);"
            " return window.__orb.slice(i).some(([s, l]) => s === 'speaking' && l > 0.3); }",
            timeout=30000,
        )
        seen = {s for s, _, _ in page.evaluate("window.__orb")}
        assert {"listening", "speaking"} <= seen, seen
        # The visitor spoke: no silent-microphone hint is left.
        assert shadow(page, "return root.querySelector('.hint').hidden;") is True
        page.click("voice-widget .end")
        wait_state(page, "ended", timeout=15000)
        assert not page.errors
    finally:
        browser.close()


# ---- the silent microphone -------------------------------------------------------------


@pytest.fixture(scope="module")
def silence_then_speech(tmp_path_factory):
    """11 s of digital silence, then speech: the hint shows, then goes away."""
    if not have_speech_tools():
        pytest.skip(
            "espeak-ng and sox are needed to make the test speech (make test installs them)"
        )
    return synth_speech(
        "Hello, can you hear me now? Hello, hello.",
        tmp_path_factory.mktemp("silent-mic") / "late.wav",
        pad_before=11,
        pad_after=20,
        speed=140,
    )


@pytest.fixture(scope="module")
def silent_wav(tmp_path_factory):
    if not have_speech_tools():
        pytest.skip("sox is needed to make the silent test audio (make test installs it)")
    out = tmp_path_factory.mktemp("silent-mic") / "silence.wav"
    subprocess.run(
        ["sox", "-n", "-r", "16000", "-c", "1", "-b", "16", str(out), "trim", "0", "30"],
        check=True,
    )
    return out


@pytest.mark.timeout(120)
def test_silent_microphone_names_what_to_check_and_clears_on_speech(
    playwright_session, daphne_server, make_widget, silence_then_speech, pages, artifacts_dir
):
    widget = make_widget(placement="inline")
    browser = launch_chromium(playwright_session, fake_mic_wav=silence_then_speech)
    try:
        holder = {}
        context, page = open_host_page(
            browser,
            daphne_server,
            widget["id"],
            setup=lambda p: holder.update(answering_gateway(p)),
        )
        pages.append(context)
        page.click("voice-widget .start")
        wait_state(page, "listening")
        hint = "root.querySelector('.hint')"
        assert shadow(page, f"return {hint}.hidden;") is True  # not at once
        page.wait_for_function(
            f"() => !{WIDGET}.shadowRoot.querySelector('.hint').hidden", timeout=9000
        )
        text = shadow(page, f"return {hint}.textContent;")
        assert text.startswith(SILENT_MIC_TEXT)
        for what in ("muted", "right microphone", "system"):
            assert what in text, text
        assert shadow(page, f"return {hint}.getAttribute('role');") == "status"
        assert page.evaluate(f"{WIDGET}.debug.micSilent") is True
        shot(page, artifacts_dir / "widget-silent-microphone.png")
        # Speech arrives: the hint goes away.
        page.wait_for_function(
            f"() => {WIDGET}.shadowRoot.querySelector('.hint').hidden", timeout=15000
        )
        assert page.evaluate(f"{WIDGET}.debug.micSilent") is False
        page.click("voice-widget .end")
        wait_state(page, "ended")
        assert not page.errors
    finally:
        browser.close()


@pytest.mark.timeout(90)
def test_silent_microphone_hint_in_german_and_not_while_muted(
    playwright_session, daphne_server, make_widget, silent_wav, pages
):
    widget = make_widget(placement="inline")
    browser = launch_chromium(playwright_session, fake_mic_wav=silent_wav)
    try:
        holder = {}
        context, page = open_host_page(
            browser,
            daphne_server,
            widget["id"],
            attrs='data-language="de"',
            setup=lambda p: holder.update(answering_gateway(p)),
        )
        pages.append(context)
        page.click("voice-widget .start")
        wait_state(page, "listening")
        page.wait_for_function(
            f"() => !{WIDGET}.shadowRoot.querySelector('.hint').hidden", timeout=9000
        )
        assert shadow(page, "return root.querySelector('.hint').textContent;").startswith(
            "Wir hören Sie nicht."
        )
        # The visitor mutes on purpose: the hint goes away and stays away while muted.
        page.click("voice-widget .mute")
        page.wait_for_function(
            f"() => {WIDGET}.shadowRoot.querySelector('.hint').hidden", timeout=5000
        )
        page.wait_for_timeout(6000)
        assert shadow(page, "return root.querySelector('.hint').hidden;") is True
        page.click("voice-widget .end")
        wait_state(page, "ended")
        assert not page.errors
    finally:
        browser.close()


# ---- accessibility ---------------------------------------------------------------------


def axe_violations(page) -> list:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async () => {
          const r = await axe.run({include: [['voice-widget']]},
                                  {resultTypes: ['violations']});
          return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary}))}));
        }"""
    )
    return result


def open_panel(page, placement: str) -> None:
    if placement == "floating" and shadow(page, "return root.querySelector('.card').hidden;"):
        page.click("voice-widget .launcher")


@pytest.mark.parametrize("placement", ["floating", "inline"])
def test_axe_finds_no_violations_in_any_state(
    chromium, daphne_server, make_widget, pages, placement, artifacts_dir
):
    if not AXE.exists():
        pytest.skip("axe-core is not installed: `make install-test` runs npm ci in tests/e2e/js")
    checked = {}

    def check(page, name):
        checked[name] = axe_violations(page)

    # idle (no terms) and, on the floating one, the closed launcher
    plain = make_widget(placement=placement, call_to_action="Ask Acme")
    holder = {}
    context, page = open_host_page(
        chromium, daphne_server, plain["id"], setup=lambda p: holder.update(answering_gateway(p))
    )
    pages.append(context)
    if placement == "floating":
        check(page, "launcher")
    open_panel(page, placement)
    check(page, "idle")
    # in call
    page.click("voice-widget .start")
    wait_state(page, "listening")
    holder["gw"].send({"type": "transcript", "role": "assistant", "text": "Hi!", "final": True})
    page.wait_for_function(f"() => {WIDGET}.shadowRoot.querySelectorAll('.transcript li').length")
    check(page, "in-call")
    page.click("voice-widget .end")
    wait_state(page, "ended")
    check(page, "ended")

    # terms, not yet accepted
    terms = make_widget(
        placement=placement,
        terms_and_condition=True,
        terms_and_condition_content="Calls are recorded.\nSee our privacy page.",
    )
    context, page = open_host_page(chromium, daphne_server, terms["id"])
    pages.append(context)
    open_panel(page, placement)
    check(page, "terms")

    # error: the server refuses the call mid-way
    def failing(page):
        def script(gw, msg):
            if msg["type"] == "hello":
                gw.send({"type": "error", "code": 4500, "message": "boom"})

        MockGateway(page, on_text=script)

    context, page = open_host_page(chromium, daphne_server, plain["id"], setup=failing)
    pages.append(context)
    open_panel(page, placement)
    page.click("voice-widget .start")
    wait_state(page, "error")
    check(page, "error")

    # disabled: this origin is not allowed
    refused = make_widget(placement=placement, allowed_origins=["https://elsewhere.example"])
    context, page = open_host_page(chromium, daphne_server, refused["id"])
    pages.append(context)
    open_panel(page, placement)
    page.wait_for_function(f"() => {WIDGET}.state === 'disabled'")
    check(page, "disabled")

    found = {
        name: [(x["id"], n["target"], n["summary"]) for x in v for n in x["nodes"]]
        for name, v in checked.items()
        if v
    }
    assert not found, json.dumps(found, indent=1)
    assert set(checked) >= {"idle", "terms", "in-call", "ended", "error", "disabled"}


def test_inline_widget_works_with_the_keyboard_alone(chromium, daphne_server, make_widget, pages):
    widget = make_widget(
        placement="inline", terms_and_condition=True, terms_and_condition_content="Terms"
    )
    holder = {}
    context, page = open_host_page(
        chromium, daphne_server, widget["id"], setup=lambda p: holder.update(answering_gateway(p))
    )
    pages.append(context)

    def focused():
        return page.evaluate(
            f"() => document.activeElement === {WIDGET} &&"
            f" {WIDGET}.shadowRoot.activeElement?.className"
        )

    for _ in range(8):
        page.keyboard.press("Tab")
        if focused() == "accept-input":
            break
    assert focused() == "accept-input"
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert focused() == "start"
    page.keyboard.press("Enter")
    wait_state(page, "listening")
    assert focused() == "end"  # focus follows to the control that ends the call
    page.keyboard.press("Enter")
    wait_state(page, "ended")
    assert focused() == "start"
    assert holder["gw"].of_type("end")
    assert not page.errors


def test_configured_colours_that_are_hard_to_read_get_readable_text(
    chromium, daphne_server, make_widget, pages
):
    # White on yellow (1.5:1) fails WCAG AA: the button text turns dark; a readable pair stays.
    for button, text, want in (
        ("#FACC15", "#FFFFFF", "rgb(17, 24, 39)"),
        ("#0EA5E9", "#FFFFFF", "rgb(17, 24, 39)"),  # the default pair: 2.8:1
        ("#0369A1", "#FFFFFF", "rgb(255, 255, 255)"),
    ):
        widget = make_widget(placement="inline", button_color=button, button_text_color=text)
        context, page = open_host_page(chromium, daphne_server, widget["id"])
        pages.append(context)
        got = shadow(
            page,
            "const s = getComputedStyle(root.querySelector('.start'));"
            " return [s.color, s.backgroundColor];",
        )
        assert got[0] == want, (button, text, got)
        assert got[1] == page.evaluate(
            "(h) => { const d = document.createElement('div'); d.style.color = h;"
            " document.body.append(d); const c = getComputedStyle(d).color; d.remove();"
            " return c; }",
            button,
        )
