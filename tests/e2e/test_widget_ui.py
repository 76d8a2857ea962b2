"""The embedded widget's UI in a real Chromium: appearance, texts as text, origin and terms
gates, keyboard use and announced states. Needs only the HTTP API (the call socket is played
by a mock inside Playwright where a test gets that far)."""

from __future__ import annotations

import json

import pytest
from widgetpage import (
    MockGateway,
    computed,
    hex_to_rgb,
    message_text,
    record_live_region,
    shadow,
    status_text,
    tab_to,
    wait_state,
)

pytestmark = pytest.mark.browser

HOSTILE = "<img src=x onerror=alert(1)>"

STYLE = {
    "background_color": "#102030",
    "text_color": "#FED",
    "button_color": "#AA0011",
    "button_text_color": "#00FF00",
    "border_color": "#123456",
    "focus_outline_color": "#FF00FF",
    "card_radius": 21,
    "button_radius": 3,
    "start_call_button": "Begin talking",
    "end_call_button": "Hang up now",
    "call_to_action": "Ask our bike expert",
    "terms_and_condition": True,
    "terms_and_condition_content": "We record calls.\nSecond line of the terms.",
}


def test_every_configured_colour_radius_and_text_is_applied(daphne_server, make_widget, open_page):
    widget = make_widget(**STYLE)
    page, probe = open_page(daphne_server.demo_url(widget["id"]))

    card = computed(page, ".card")
    assert card["bg"] == hex_to_rgb(STYLE["background_color"])
    assert card["color"] == hex_to_rgb(STYLE["text_color"])
    assert card["border"] == hex_to_rgb(STYLE["border_color"])
    assert card["radius"] == "21px"

    for selector in (".start", ".end"):
        button = computed(page, selector)
        assert button["bg"] == hex_to_rgb(STYLE["button_color"]), selector
        assert button["color"] == hex_to_rgb(STYLE["button_text_color"]), selector
        assert button["radius"] == "3px", selector
    assert computed(page, ".mute")["radius"] == "3px"

    assert computed(page, ".cta")["text"] == STYLE["call_to_action"]
    assert computed(page, ".start")["text"] == STYLE["start_call_button"]
    assert computed(page, ".end")["text"] == STYLE["end_call_button"]
    assert computed(page, ".terms-text")["text"] == STYLE["terms_and_condition_content"]
    assert computed(page, ".terms-text")["border"] == hex_to_rgb(STYLE["border_color"])

    # Keyboard focus shows the configured focus outline (:focus-visible after Tab).
    tab_to(page, ".terms-text")
    focused = computed(page, ".terms-text")
    assert focused["outlineColor"] == hex_to_rgb(STYLE["focus_outline_color"])
    assert focused["outlineStyle"] == "solid"
    tab_to(page, ".accept-input")
    page.keyboard.press("Space")
    tab_to(page, ".start")
    start = computed(page, ".start")
    assert not start["disabled"]
    assert start["outlineColor"] == hex_to_rgb(STYLE["focus_outline_color"])
    assert start["outlineStyle"] == "solid"
    assert start["outlineWidth"] != "0px"
    # The host page's own styles cannot reach into the widget.
    page.add_style_tag(
        content="button, p, div { color: red !important; background: blue !important; }"
    )
    assert computed(page, ".start")["bg"] == hex_to_rgb(STYLE["button_color"])
    assert not probe.errors


def test_hostile_texts_are_shown_as_text(daphne_server, make_widget, open_page):
    widget = make_widget(
        call_to_action=HOSTILE,
        start_call_button=HOSTILE,
        end_call_button=HOSTILE,
        terms_and_condition=True,
        terms_and_condition_content=HOSTILE,
    )
    page, probe = open_page(daphne_server.demo_url(widget["id"]))
    page.wait_for_timeout(500)  # let a would-be onerror fire
    assert shadow(page, "return root.querySelectorAll('img, script, iframe').length;") == 0
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    for selector in (".cta", ".start", ".end", ".terms-text"):
        assert computed(page, selector)["text"] == HOSTILE, selector
    assert probe.dialogs == []
    assert not probe.errors


def assert_visibly_disabled(page, reason: str) -> None:
    """No "Ready", the reason shown, no working control, the terms box not tickable."""
    assert reason in message_text(page)
    assert status_text(page) == "Unavailable"
    assert page.evaluate("document.querySelector('voice-widget').debug.state") == "disabled"
    start = computed(page, ".start")
    assert start["disabled"] and not start["hidden"]
    assert computed(page, ".end")["hidden"] and computed(page, ".mute")["hidden"]
    if shadow(page, "return !!root.querySelector('.accept-input');"):
        assert computed(page, ".accept-input")["disabled"]
        page.click("voice-widget .accept-input", force=True, timeout=2000)
        assert shadow(page, "return root.querySelector('.accept-input').checked;") is False
    # Visibly so: the controls are faded, not only inert.
    opacity = shadow(page, "return getComputedStyle(root.querySelector('.actions')).opacity;")
    assert float(opacity) < 1


def test_origin_not_allowed_cannot_start_and_says_why(daphne_server, make_widget, open_page):
    widget = make_widget(terms_and_condition=True, terms_and_condition_content="Terms")
    # allows only http://127.0.0.1:PORT
    # The same page served from http://localhost:PORT, embedding from 127.0.0.1.
    url = daphne_server.demo_url(widget["id"], on=daphne_server.widget_base)
    page, probe = open_page(url)
    assert_visibly_disabled(page, "not allowed to start calls")
    # The server agrees: a create-call from this page is refused.
    outcome = page.evaluate(
        """async ({host, id}) => {
            try {
              const r = await fetch(host + '/v1/widgets/create-call', {method: 'POST',
                headers: {'Content-Type': 'application/json'}, body: JSON.stringify({widget_id: id})});
              return r.status;
            } catch (e) { return 'blocked'; }
        }""",
        {"host": f"http://127.0.0.1:{daphne_server.port}", "id": widget["id"]},
    )
    assert outcome in ("blocked", 403)
    assert not probe.errors


def test_unavailable_assistant_says_so(daphne_server, make_widget, open_page):
    widget = make_widget(assistantId=None, terms_and_condition=True)
    page, _ = open_page(daphne_server.demo_url(widget["id"]))
    assert_visibly_disabled(page, "not available")


def test_terms_gate_then_consent_sent_with_terms_hash(daphne_server, make_widget, open_page):
    widget = make_widget(terms_and_condition=True, terms_and_condition_content="Terms v1")
    public = daphne_server.api("GET", f"/widgets/{widget['id']}/public")
    bodies = []

    def before(page):
        MockGateway(page)
        page.on(
            "request",
            lambda r: (
                bodies.append(r.post_data)
                if r.url.endswith("/create-call") and r.method == "POST"
                else None
            ),
        )

    page, _ = open_page(daphne_server.demo_url(widget["id"]), before_goto=before)
    start = page.locator("voice-widget .start")
    assert start.is_disabled()
    start.click(force=True, timeout=2000)  # disabled: nothing happens
    page.wait_for_timeout(300)
    assert status_text(page) == "Ready" and bodies == []

    page.click("voice-widget .accept-input")
    assert start.is_enabled()
    page.click("voice-widget .start")
    page.wait_for_function("() => document.querySelector('voice-widget').debug.callId")
    body = json.loads(bodies[0])
    assert body == {
        "widget_id": widget["id"],
        "consent": {"accepted": True, "terms_sha256": public["terms_sha256"]},
    }
    call = daphne_server.api(
        "GET", f"/calls/{page.evaluate('document.querySelector(`voice-widget`).debug.callId')}"
    )
    assert call["data"]["consent"]["terms_sha256"] == public["terms_sha256"]


def test_keyboard_only_start_and_states_are_announced(daphne_server, make_widget, open_page):
    widget = make_widget(terms_and_condition=True, terms_and_condition_content="Terms")

    def script(gw, msg):
        if msg["type"] == "hello":
            gw.start_call()
        elif msg["type"] == "end":
            gw.send({"type": "call.ended", "reason": "hangup"})
            gw.ws.close(code=1000)

    holder = {}

    def before(page):
        holder["gw"] = MockGateway(page, on_text=script)

    page, probe = open_page(daphne_server.demo_url(widget["id"]), before_goto=before)
    gw = holder["gw"]
    record_live_region(page)
    tab_to(page, ".accept-input")
    page.keyboard.press("Space")
    tab_to(page, ".start")
    page.keyboard.press("Enter")
    wait_state(page, "listening")
    # Focus moved to the end button (the start button is hidden during the call).
    assert shadow(page, "return root.activeElement && root.activeElement.className;") == "end"
    for state in ("thinking", "speaking", "listening"):
        gw.send({"type": "state", "state": state})
        wait_state(page, state)
    page.keyboard.press("Enter")  # the focused end button
    wait_state(page, "ended")
    announced = page.evaluate("window.__announced")
    expected = [
        "Ready",
        "Connecting…",
        "Listening",
        "Thinking…",
        "Speaking",
        "Listening",
        "Call ended",
    ]
    seen = [t for i, t in enumerate(announced) if i == 0 or t != announced[i - 1]]
    assert seen == expected, announced
    # Ended: the call can start again from the keyboard.
    assert shadow(page, "return root.activeElement && root.activeElement.className;") == "start"
    assert not computed(page, ".start")["disabled"]
    assert gw.of_type("end")
    assert not probe.errors


def test_tag_in_head_and_two_widgets_on_one_page(daphne_server, make_widget, chromium):
    first = make_widget(call_to_action="First widget")
    second = make_widget(call_to_action="Second widget", button_color="#00AA00")
    src = f"{daphne_server.widget_base}/static/widget/embed.js"
    html = (
        "<!doctype html><html><head>"
        f'<script src="{src}" data-widget-id="{first["id"]}" async></script>'
        "<style>* { all: unset; } button { display: none !important; }</style>"
        "</head><body><p>Host page</p>"
        f'<div id="slot"><script src="{src}" data-widget-id="{second["id"]}" async></script></div>'
        "</body></html>"
    )
    context = chromium.new_context()
    page = context.new_page()
    try:
        # A page of our own on the 127.0.0.1 origin (a fulfilled route would count as a
        # public address and be refused access to loopback, so replace a real page's content).
        page.goto(f"{daphne_server.page_base}/demo/?widget=none")
        assert page.evaluate("document.querySelectorAll('voice-widget').length") == 0
        page.set_content(html)
        page.wait_for_function("() => document.querySelectorAll('voice-widget').length === 2")
        page.wait_for_function(
            "() => [...document.querySelectorAll('voice-widget')]"
            ".every(w => w.shadowRoot.querySelector('.cta')?.textContent)"
        )
        placed = page.evaluate(
            "() => [...document.querySelectorAll('voice-widget')].map(w => ["
            "w.parentElement.id || w.parentElement.tagName,"
            "w.shadowRoot.querySelector('.cta').textContent,"
            "getComputedStyle(w.shadowRoot.querySelector('.start')).display])"
        )
        by_text = {text: (parent, display) for parent, text, display in placed}
        assert by_text["First widget"][0] == "BODY"  # a tag in <head> renders in the body
        assert by_text["Second widget"][0] == "slot"  # otherwise right after its tag
        assert all(display != "none" for _, display in by_text.values())
    finally:
        context.close()
