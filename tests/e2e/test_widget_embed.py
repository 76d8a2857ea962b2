"""The embedded widget as a host page sees it (issue 12), in a real Chromium: floating and
inline placement, isolation from hostile host CSS, a truthful transcript, the snippet's data-*
attributes, the element's methods and DOM events, and the built-in texts per language. The
call socket is played by a mock inside Playwright (create-call is the real server's)."""

from __future__ import annotations

import json

import httpx
import pytest
from widgetpage import (
    WIDGET,
    answering_gateway,
    computed,
    hex_to_rgb,
    shadow,
    wait_state,
)

pytestmark = pytest.mark.browser

EVENTS = ("ready", "call-start", "state", "message", "call-end", "error")
RECORD_EVENTS = (
    "<script>window.__events = [];"
    f"for (const n of {json.dumps(list(EVENTS))}) document.addEventListener('voicewidget:' + n,"
    " (e) => window.__events.push([n, e.detail]));</script>"
)
# Every element's every computed property inside the widget (and the host element's).
ALL_STYLES_JS = """() => {
  const host = document.querySelector('voice-widget');
  const out = {};
  const els = [host, ...host.shadowRoot.querySelectorAll('*')];
  els.forEach((e, i) => {
    const s = getComputedStyle(e);
    const props = {};
    for (let j = 0; j < s.length; j++) props[s[j]] = s.getPropertyValue(s[j]);
    out[i + ':' + e.tagName + '.' + (e.getAttribute('class') || '')] = props;
  });
  return out;
}"""
HOSTILE_CSS = """
* { all: unset !important; letter-spacing: 3px !important; text-transform: uppercase !important;
    font: italic 30px/3 serif !important; direction: rtl !important; color: red !important;
    word-spacing: 9px !important; text-align: right !important; visibility: visible !important; }
html, body { font-size: 40px !important; line-height: 4 !important; cursor: wait !important; }
voice-widget { display: inline !important; position: static !important; max-width: none !important;
    width: 10px !important; opacity: .2 !important; transform: scale(2) !important; }
button, div, p, span, li, ol, input, label, svg { display: none !important; }
"""


@pytest.fixture
def host_page(chromium, daphne_server):
    """host_page(widget_id, attrs="", before="", after="", viewport=None, setup=None): a page
    on the 127.0.0.1 origin whose body holds `before`, the snippet with `attrs`, `after`."""
    contexts = []

    def open_(
        widget_id,
        *,
        attrs="",
        before="",
        after="",
        viewport=None,
        setup=None,
        head="",
        microphone=True,
    ):
        context = chromium.new_context(
            permissions=["microphone"] if microphone else [],
            viewport=viewport or {"width": 1280, "height": 800},
        )
        contexts.append(context)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        if setup:
            setup(page)
        # A real page of the 127.0.0.1 origin, its content replaced (see test_widget_ui.py).
        page.goto(f"{daphne_server.page_base}/demo/?widget=none")
        src = f"{daphne_server.widget_base}/static/widget/embed.js"
        page.set_content(
            "<!doctype html><html><head><meta name=viewport content='width=device-width'>"
            f"{head}</head><body>{RECORD_EVENTS}{before}"
            f'<script src="{src}" data-widget-id="{widget_id}" {attrs} async></script>'
            f"{after}</body></html>"
        )
        page.wait_for_function(
            f"() => {WIDGET}?.shadowRoot?.querySelector('.card') &&"
            " performance.getEntriesByName('voice-widget:first-paint').length > 0"
        )
        page.wait_for_function("() => window.__events.some(([n]) => n === 'ready')")
        page.errors = errors
        return page

    yield open_
    for context in contexts:
        context.close()


def rect(page, selector: str | None = None) -> dict:
    target = f"{WIDGET}.shadowRoot.querySelector({json.dumps(selector)})" if selector else WIDGET
    return page.evaluate(
        f"() => {{ const r = {target}.getBoundingClientRect();"
        " return {x: r.x, y: r.y, w: r.width, h: r.height, r: r.right, b: r.bottom,"
        " vw: innerWidth, vh: innerHeight}; }"
    )


def panel_open(page) -> bool:
    return shadow(page, "return !root.querySelector('.panel').hidden;")


def events(page, *names) -> list:
    got = page.evaluate("window.__events")
    return [e for e in got if not names or e[0] in names]


# ---- 1. placement ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "position, how",
    [
        ("bottom-right", "config"),
        ("bottom-left", "config"),
        ("top-right", "attribute"),
        ("top-left", "attribute"),
    ],
)
def test_floating_launcher_sits_in_its_corner_and_opens_the_panel(
    make_widget, host_page, position, how
):
    fields = {"placement": "floating", "button_color": "#AA0011", "call_to_action": "Ask Acme"}
    if how == "config":
        widget = make_widget(position=position, **fields)
        page = host_page(widget["id"], before="<p id=content>Host content</p>")
    else:  # the snippet's data-position wins over the configuration
        widget = make_widget(position="bottom-right", **fields)
        page = host_page(widget["id"], attrs=f'data-position="{position}"')
    box = rect(page)
    assert (round(box["w"]), round(box["h"])) == (56, 56)  # closed: only the launcher
    near = {
        "bottom": abs(box["vh"] - box["b"] - 16) < 2,
        "top": abs(box["y"] - 16) < 2,
        "right": abs(box["vw"] - box["r"] - 16) < 2,
        "left": abs(box["x"] - 16) < 2,
    }
    vertical, horizontal = position.split("-")
    assert near[vertical] and near[horizontal], (position, box)
    assert page.evaluate(f"{WIDGET}.parentElement.tagName") == "BODY"

    launcher = page.locator("voice-widget .launcher")
    assert launcher.get_attribute("aria-label") == "Ask Acme"
    assert launcher.get_attribute("aria-expanded") == "false"
    assert computed(page, ".launcher")["bg"] == hex_to_rgb("#AA0011")
    assert (
        shadow(
            page, "return getComputedStyle(root.querySelector('.launcher')).borderTopLeftRadius;"
        )
        == "50%"
    )
    assert not panel_open(page)

    launcher.click()
    assert panel_open(page)
    assert launcher.get_attribute("aria-expanded") == "true"
    panel = rect(page, ".panel")
    assert panel["x"] >= 0 and panel["r"] <= panel["vw"] and panel["y"] >= 0
    assert panel["b"] <= panel["vh"]
    # Focus moved into the panel; Escape closes it and gives focus back to the launcher.
    assert shadow(page, "return root.querySelector('.panel').contains(root.activeElement);")
    page.keyboard.press("Escape")
    assert not panel_open(page)
    assert shadow(page, "return root.activeElement?.className;") == "launcher"
    page.keyboard.press("Enter")  # the launcher, from the keyboard
    assert panel_open(page)
    page.click("voice-widget .close")
    assert not panel_open(page)
    assert not page.errors


def test_closing_the_panel_keeps_the_call_and_the_launcher_shows_it_is_live(
    make_widget, host_page, artifacts_dir
):
    widget = make_widget(placement="floating", call_to_action="Ask Acme")
    holder = {}
    page = host_page(widget["id"], setup=lambda p: holder.update(answering_gateway(p)))
    page.click("voice-widget .launcher")
    page.click("voice-widget .start")
    wait_state(page, "listening")
    assert computed(page, ".live")["hidden"] is False
    page.click("voice-widget .close")
    assert not panel_open(page)
    page.wait_for_timeout(500)
    gw = holder["gw"]
    assert gw.of_type("end") == [] and page.evaluate(f"{WIDGET}.state") == "listening"
    live = shadow(
        page,
        "const l = root.querySelector('.live'); return !l.hidden && getComputedStyle(l).display;",
    )
    assert live and live != "none"
    label = page.locator("voice-widget .launcher").get_attribute("aria-label")
    assert label == "Ask Acme (call in progress)"
    page.screenshot(path=str(artifacts_dir / "widget-floating-live-closed-1280.png"))
    gw.send({"type": "state", "state": "speaking"})
    wait_state(page, "speaking")  # the call goes on behind the closed panel
    page.click("voice-widget .launcher")
    page.click("voice-widget .end")
    wait_state(page, "ended")
    assert computed(page, ".live")["hidden"] is True
    assert page.locator("voice-widget .launcher").get_attribute("aria-label") == "Ask Acme"


def test_floating_widget_works_with_the_keyboard_alone(make_widget, host_page):
    widget = make_widget(
        placement="floating", terms_and_condition=True, terms_and_condition_content="Terms"
    )
    holder = {}
    page = host_page(
        widget["id"],
        before="<a href='#top'>A host link</a>",
        setup=lambda p: holder.update(answering_gateway(p)),
    )

    def focused():
        return page.evaluate(
            f"() => document.activeElement === {WIDGET} &&"
            f" {WIDGET}.shadowRoot.activeElement?.className"
        )

    for _ in range(6):
        page.keyboard.press("Tab")
        if focused() == "launcher":
            break
    assert focused() == "launcher"
    page.keyboard.press("Enter")
    assert focused() == "accept-input"  # the panel opened on what is needed first
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert focused() == "start"
    page.keyboard.press("Enter")
    wait_state(page, "listening")
    assert focused() == "end"
    page.keyboard.press("Escape")  # the panel closes, the call goes on
    assert focused() == "launcher" and not panel_open(page)
    assert page.evaluate(f"{WIDGET}.state") == "listening"
    page.keyboard.press("Enter")
    assert focused() == "end"
    page.keyboard.press("Enter")
    wait_state(page, "ended")
    assert holder["gw"].of_type("end")
    assert not page.errors


def test_375px_viewport_and_screenshots_of_each_placement(make_widget, host_page, artifacts_dir):
    floating = make_widget(
        placement="floating",
        terms_and_condition=True,
        terms_and_condition_content="Calls are recorded.",
    )
    inline = make_widget(placement="inline")
    article = "".join(f"<p>Host paragraph {i}: the page's own content.</p>" for i in range(30))
    for width in (1280, 375):
        viewport = {"width": width, "height": 740}
        page = host_page(floating["id"], before=article, viewport=viewport)
        box = rect(page)
        assert (round(box["w"]), round(box["h"])) == (56, 56)
        # The host page is covered only where the launcher is.
        hit = page.evaluate(
            "() => document.elementFromPoint(innerWidth - 100, innerHeight - 40).tagName"
        )
        assert hit != "VOICE-WIDGET"
        page.screenshot(path=str(artifacts_dir / f"widget-floating-closed-{width}.png"))
        page.click("voice-widget .launcher")
        panel = rect(page, ".panel")
        assert panel["x"] >= 0 and panel["r"] <= width, panel
        assert panel["w"] <= min(360, width - 32) + 0.5
        assert panel["y"] >= 0
        page.screenshot(path=str(artifacts_dir / f"widget-floating-open-{width}.png"))
        # Every control inside the panel can be reached and used at this width.
        page.click("voice-widget .accept-input")
        assert page.locator("voice-widget .start").is_enabled()

        page = host_page(inline["id"], before="<p>Before the widget.</p>", viewport=viewport)
        card = rect(page, ".card")
        assert card["x"] >= 0 and card["r"] <= width
        page.screenshot(path=str(artifacts_dir / f"widget-inline-{width}.png"))
    for name in ("floating-closed", "floating-open", "inline"):
        for width in (1280, 375):
            assert (artifacts_dir / f"widget-{name}-{width}.png").stat().st_size > 1000


def test_inline_goes_into_data_container_and_data_placement_overrides(make_widget, host_page):
    inline = make_widget(placement="inline", call_to_action="In the slot")
    page = host_page(
        inline["id"],
        attrs='data-container="#slot"',
        before="<main><div id=slot></div></main>",
        after="<footer id=foot>Footer</footer>",
    )
    assert page.evaluate(f"{WIDGET}.parentElement.id") == "slot"
    assert page.evaluate(f"{WIDGET}.placement") == "inline"
    assert shadow(page, "return !!root.querySelector('.launcher');") is False
    assert computed(page, ".start")["hidden"] is False

    page = host_page(inline["id"], attrs='data-placement="floating" data-position="top-left"')
    assert page.evaluate(f"{WIDGET}.placement") == "floating"
    box = rect(page)
    assert abs(box["x"] - 16) < 2 and abs(box["y"] - 16) < 2
    assert events(page, "ready")[0][1]["placement"] == "floating"


# ---- 2. isolation ----------------------------------------------------------------------


@pytest.mark.parametrize("placement", ["inline", "floating"])
def test_hostile_host_css_changes_no_computed_style_inside_the_widget(
    make_widget, host_page, placement
):
    widget = make_widget(
        placement=placement, terms_and_condition=True, terms_and_condition_content="Terms"
    )
    page = host_page(widget["id"], before="<p>Host text</p>")
    if placement == "floating":
        page.click("voice-widget .launcher")
    before = page.evaluate(ALL_STYLES_JS)
    assert len(before) > 15
    page.add_style_tag(content=HOSTILE_CSS)
    page.wait_for_timeout(100)
    # The page's own text did change (the stylesheet is in force) ...
    assert page.evaluate("getComputedStyle(document.querySelector('p')).letterSpacing") == "3px"
    after = page.evaluate(ALL_STYLES_JS)
    assert list(after) == list(before)
    changed = {
        element: {p: (v, after[element][p]) for p, v in props.items() if after[element][p] != v}
        for element, props in before.items()
    }
    # ... and nothing inside the widget did.
    assert {k: v for k, v in changed.items() if v} == {}
    assert (
        shadow(page, "return getComputedStyle(root.querySelector('.cta')).textTransform;") == "none"
    )


# ---- 3. transcript ---------------------------------------------------------------------


def test_transcript_tells_the_truth_scrolls_and_announces_final_lines_once(make_widget, host_page):
    widget = make_widget(placement="inline")
    holder = {}
    page = host_page(widget["id"], setup=lambda p: holder.update(answering_gateway(p)))
    page.click("voice-widget .start")
    wait_state(page, "listening")
    gw = holder["gw"]
    shadow(
        page,
        """
        window.__said = [];
        new MutationObserver((records) => { for (const r of records)
            for (const n of r.addedNodes) window.__said.push(n.textContent); })
          .observe(root.querySelector('.sr[aria-live]'), {childList: true});
        return true;
        """,
    )

    def lines():
        return shadow(
            page,
            "return [...root.querySelectorAll('.transcript li')].map(li => [li.className,"
            " li.querySelector('.text').textContent, li.textContent]);",
        )

    # A greeting interrupted before a word was heard: no line at all.
    gw.send({"type": "transcript", "role": "assistant", "text": "Hello! Welcome", "final": False})
    page.wait_for_function(
        f"() => {WIDGET}.shadowRoot.querySelectorAll('.transcript li').length === 1"
    )
    gw.send({"type": "interruption", "heard_text": ""})
    gw.send({"type": "transcript", "role": "assistant", "text": "", "final": True})
    page.wait_for_function(
        f"() => {WIDGET}.shadowRoot.querySelectorAll('.transcript li').length === 0"
    )
    gw.send({"type": "transcript", "role": "user", "text": "  ", "final": True})
    gw.send({"type": "transcript", "role": "user", "text": "Where is the shop?", "final": True})
    gw.send({"type": "transcript", "role": "assistant", "text": "Our shop is", "final": False})
    gw.send(
        {
            "type": "transcript",
            "role": "assistant",
            "text": "Our shop is at twelve Harbour Street. Anything else",
            "final": False,
        }
    )
    gw.send({"type": "interruption", "heard_text": "Our shop is at twelve Harbour Street."})
    gw.send(
        {
            "type": "transcript",
            "role": "assistant",
            "text": "Our shop is at twelve Harbour Street.",
            "final": True,
        }
    )
    page.wait_for_function("() => window.__said.length === 2")
    got = lines()
    assert [g[1] for g in got] == ["Where is the shop?", "Our shop is at twelve Harbour Street."]
    assert "interrupted" not in got[0][0] and "interrupted" in got[1][0]
    assert got[1][2].endswith("(interrupted)")
    assert all(g[1].strip() for g in got)  # never an empty line
    # Announced once each, when final (no partial line ever reached the live region).
    assert page.evaluate("window.__said") == [
        "You: Where is the shop?",
        "Assistant: Our shop is at twelve Harbour Street. (interrupted)",
    ]
    messages = [e[1] for e in events(page, "message")]
    assert {
        "role": "assistant",
        "text": "Our shop is at twelve Harbour Street.",
        "final": True,
        "interrupted": True,
    } in messages
    assert all(m["text"] for m in messages)

    # Many lines: the newest stays in view ...
    for i in range(25):
        gw.send({"type": "transcript", "role": "user", "text": f"Line {i}", "final": True})
    page.wait_for_function("() => window.__said.length === 27")
    at_end = "const b = root.querySelector('.transcript'); return b.scrollHeight - b.scrollTop - b.clientHeight;"
    assert shadow(page, at_end) < 2
    # ... unless the visitor scrolled up to read, with the mouse wheel.
    box = page.locator("voice-widget .transcript").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.mouse.wheel(0, -2000)
    page.wait_for_function(
        f"() => {WIDGET}.shadowRoot.querySelector('.transcript').scrollTop === 0"
    )
    gw.send({"type": "transcript", "role": "assistant", "text": "A new line", "final": True})
    page.wait_for_function("() => window.__said.length === 28")
    assert shadow(page, "return root.querySelector('.transcript').scrollTop;") == 0
    page.mouse.wheel(0, 5000)
    page.wait_for_function(
        f"() => {{ const b = {WIDGET}.shadowRoot.querySelector('.transcript');"
        " return b.scrollHeight - b.scrollTop - b.clientHeight < 2; }"
    )
    gw.send({"type": "transcript", "role": "assistant", "text": "And the newest", "final": True})
    page.wait_for_function("() => window.__said.length === 29")
    assert shadow(page, at_end) < 2
    assert not page.errors


# ---- 4. host-page API ------------------------------------------------------------------


def test_snippet_attributes_methods_and_events_in_order(daphne_server, make_widget, host_page):
    widget = make_widget(placement="floating")
    holder = {}
    bodies = []

    def setup(page):
        holder.update(answering_gateway(page))
        page.on(
            "request",
            lambda r: (
                bodies.append(json.loads(r.post_data))
                if r.url.endswith("/create-call") and r.method == "POST"
                else None
            ),
        )

    variables = {"customer_name": "Ada", "plan": "pro"}
    attrs = (
        'data-audio="websocket" data-ice-timeout-ms="2500" data-placement="inline" '
        f"data-variables='{json.dumps(variables)}'"
    )
    buttons = (
        "<button id=go onclick=\"document.querySelector('voice-widget').start()\">Call</button>"
        "<button id=mute onclick=\"document.querySelector('voice-widget').mute(true)\">M</button>"
        "<button id=unmute onclick=\"document.querySelector('voice-widget').mute(false)\">U</button>"
        "<button id=bye onclick=\"document.querySelector('voice-widget').end()\">End</button>"
    )
    page = host_page(widget["id"], attrs=attrs, before=buttons, setup=setup)
    el = page.evaluate(
        f"() => [{WIDGET}.getAttribute('data-audio'), {WIDGET}.getAttribute('data-ice-timeout-ms'),"
        f" {WIDGET}.placement]"
    )
    assert el == ["websocket", "2500", "inline"]
    assert events(page) == [
        ["ready", {"widgetId": widget["id"], "placement": "inline", "disabled": None}]
    ]
    for name in ("start", "end", "mute", "sendText", "open", "close"):
        assert page.evaluate(f"typeof {WIDGET}.{name}") == "function", name
    assert page.evaluate(f"{WIDGET}.sendText('Too early')") is False  # no call to take it
    assert events(page, "error")[-1][1]["code"] == "text"
    page.evaluate("window.__events = []")

    page.click("#go")
    wait_state(page, "listening")
    gw = holder["gw"]
    assert bodies[-1]["variables"] == variables
    assert gw.of_type("hello")[0]["audio"] == "websocket"  # data-audio reached the call
    call_id = page.evaluate(f"{WIDGET}.debug.callId")
    stored = daphne_server.api("GET", f"/calls/{call_id}", expect=200)["data"]
    assert stored["variables"] == variables

    page.click("#mute")
    page.wait_for_function(
        f"() => {WIDGET}.shadowRoot.querySelector('.mute').getAttribute('aria-pressed') === 'true'"
    )
    page.click("#unmute")
    page.wait_for_function(
        f"() => {WIDGET}.shadowRoot.querySelector('.mute').getAttribute('aria-pressed') === 'false'"
    )
    assert page.evaluate(f"{WIDGET}.sendText('  Hello there ')") is True
    assert page.evaluate(f"{WIDGET}.sendText('   ')") is False
    page.wait_for_function(f"() => {WIDGET}.shadowRoot.querySelector('form.type input')")
    gw.send({"type": "state", "state": "thinking"})
    gw.send({"type": "transcript", "role": "assistant", "text": "Hi!", "final": True})
    wait_state(page, "thinking")
    page.wait_for_function("() => window.__events.some(([n]) => n === 'message')")
    page.click("#bye")
    wait_state(page, "ended")
    page.wait_for_function("() => window.__events.some(([n]) => n === 'call-end')")

    assert [m["muted"] for m in gw.of_type("mute")] == [True, False]
    assert gw.of_type("end")
    got = [(n, d) for n, d in events(page) if n != "ready"]
    names = [n if n != "state" else f"state:{d['state']}" for n, d in got]
    assert names == [
        "state:connecting",
        "call-start",
        "state:listening",
        "error",  # sendText('   '): nothing to send
        "state:thinking",
        "message",
        "state:ended",
        "call-end",
    ], names
    detail = dict(got)
    assert detail["call-start"] == {"callId": call_id}
    assert detail["error"]["code"] == "text" and detail["error"]["message"]
    assert gw.of_type("text") == [{"type": "text", "text": "Hello there"}]
    assert detail["message"] == {
        "role": "assistant",
        "text": "Hi!",
        "final": True,
        "interrupted": False,
    }
    assert detail["call-end"] == {"reason": "hangup", "callId": call_id}
    assert not page.errors


def test_variables_out_of_bounds_are_refused_naming_the_field(
    daphne_server, make_widget, host_page
):
    widget = make_widget(placement="inline")
    too_many = {f"v{i}": "x" for i in range(51)}
    page = host_page(widget["id"], attrs=f"data-variables='{json.dumps(too_many)}'")
    page.click("voice-widget .start")
    wait_state(page, "error")
    assert "At most 50 variables" in shadow(
        page, "return root.querySelector('.message').textContent;"
    )
    error = events(page, "error")[-1][1]
    assert error["message"] == "At most 50 variables."
    # The server's answer, as the widget got it: a 400 naming the field.
    for bad in (too_many, {"bad name!": "x"}, {"name": "x" * 1001}, {"k" * 65: "x"}, ["x"]):
        r = httpx.post(
            f"{daphne_server.widget_base}/v1/widgets/create-call",
            json={"widget_id": widget["id"], "variables": bad},
            headers={"Origin": daphne_server.page_base},
            timeout=30,
        )
        assert r.status_code == 400, (bad, r.text)
        assert "variables" in r.json()["errors"], r.text
    # Not JSON at all: an error event, and the call goes on without variables.
    page = host_page(widget["id"], attrs="data-variables='{not json'")
    page.click("voice-widget .start")
    page.wait_for_function(
        "() => window.__events.some(([n, d]) => n === 'error' && d.code === 'variables')"
    )


def test_start_refused_before_terms_and_on_a_disabled_widget(daphne_server, make_widget, host_page):
    widget = make_widget(
        placement="floating", terms_and_condition=True, terms_and_condition_content="Terms"
    )
    page = host_page(
        widget["id"],
        before="<button id=go onclick=\"document.querySelector('voice-widget').start()\">Call</button>",
    )
    page.click("#go")
    assert panel_open(page)  # opened to show what is missing
    assert events(page, "error")[-1][1]["code"] == "terms"
    assert page.evaluate(f"{WIDGET}.state") == "idle"
    assert shadow(page, "return root.activeElement?.className;") == "accept-input"

    unavailable = make_widget(placement="floating", assistantId=None)
    page = host_page(
        unavailable["id"],
        before="<button id=go onclick=\"document.querySelector('voice-widget').start()\">Call</button>",
    )
    assert events(page, "ready")[0][1]["disabled"] == "unavailable"
    assert events(page, "error")[0][1]["code"] == "unavailable"
    launcher = page.locator("voice-widget .launcher")
    assert launcher.get_attribute("aria-label") == "Talk to our assistant (Unavailable)"
    launcher.click()
    assert shadow(page, "return root.querySelector('.status').textContent;") == "Unavailable"
    assert "not available" in shadow(page, "return root.querySelector('.message').textContent;")
    assert computed(page, ".start")["disabled"]


# ---- 6. languages ----------------------------------------------------------------------

LANGUAGE_TEXTS = {
    "en": ("Ready", "Mute", "I have read and accept the terms above."),
    "de": ("Bereit", "Stumm", "Ich habe die obigen Bedingungen gelesen und akzeptiere sie."),
    "fr": ("Prêt", "Couper le micro", "J’ai lu et j’accepte les conditions ci-dessus."),
    "es": ("Listo", "Silenciar", "He leído y acepto las condiciones anteriores."),
}


@pytest.mark.parametrize("language", list(LANGUAGE_TEXTS))
def test_built_in_texts_in_each_language(daphne_server, make_widget, host_page, language):
    # (The button and call-to-action texts are the widget's own configuration, not built in.)
    widget = make_widget(
        placement="inline", terms_and_condition=True, terms_and_condition_content="Terms"
    )
    status, mute, accept = LANGUAGE_TEXTS[language]
    page = host_page(widget["id"], attrs=f'data-language="{language}-XX"')
    page.wait_for_function(
        f"() => {WIDGET}.shadowRoot.querySelector('.status').textContent === {json.dumps(status)}"
    )
    assert shadow(page, "return root.querySelector('.mute').textContent;") == mute
    assert shadow(page, "return root.querySelector('.accept span').textContent;") == accept
    assert (
        shadow(page, "return getComputedStyle(root.querySelector('.vw')).visibility;") == "visible"
    )


def test_language_follows_the_assistant_and_call_errors_are_translated(
    daphne_server, make_widget, host_page
):
    assistant = daphne_server.create_assistant(language="fr")
    widget = make_widget(placement="inline", assistantId=assistant["id"])
    page = host_page(widget["id"], microphone=False)
    page.wait_for_function(
        f"() => {WIDGET}.shadowRoot.querySelector('.status').textContent === 'Prêt'"
    )
    # The call machinery's texts are French too: here, the microphone refused.
    page.click("voice-widget .start")
    wait_state(page, "error")
    assert shadow(page, "return root.querySelector('.status').textContent;") == "Erreur"
    assert shadow(page, "return root.querySelector('.message').textContent;").startswith(
        "L’accès au micro a été refusé."
    )
    assert events(page, "error")[-1][1]["code"] == "mic"
