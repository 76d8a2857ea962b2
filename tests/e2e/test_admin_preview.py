"""The admin's live preview renders the real widget UI (static/widget/ui.js) from the form,
and starts a real call with the staff session (this server's own origin is in no widget's
allowed_origins: the session, CSRF-checked, is what allows it)."""

from __future__ import annotations

import secrets

import httpx
import pytest
from widgetpage import HOSTILE_TEXT, computed, debug, hex_to_rgb, shadow, wait_state

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def admin_login(daphne_server):
    password = secrets.token_urlsafe(16)
    daphne_server.env["DJANGO_SUPERUSER_PASSWORD"] = password
    try:
        daphne_server.manage(
            "createsuperuser", "--noinput", "--username", "e2e-admin", "--email", "e2e@example.com"
        )
    finally:
        daphne_server.env.pop("DJANGO_SUPERUSER_PASSWORD", None)
    return "e2e-admin", password


def test_admin_preview_is_the_real_widget_follows_the_form_and_calls_with_the_staff_session(
    daphne_server, make_widget, chromium, admin_login
):
    widget = make_widget(button_color="#123456", card_radius=5, call_to_action="Talk to us")
    context = chromium.new_context(permissions=["microphone"])
    page = context.new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    try:
        base = daphne_server.widget_base
        page.goto(f"{base}/admin/login/?next=/admin/widgets/widget/{widget['id']}/change/")
        page.fill("#id_username", admin_login[0])
        page.fill("#id_password", admin_login[1])
        page.click("input[type=submit]")
        page.wait_for_selector("#widget-preview voice-widget")
        assert page.locator("#embed-snippet").input_value().startswith("<script src=")

        assert computed(page, ".start")["bg"] == hex_to_rgb("#123456")
        assert computed(page, ".card")["radius"] == "5px"
        assert computed(page, ".cta")["text"] == "Talk to us"
        assert not computed(page, ".start")["disabled"]  # a saved widget's preview can call

        page.fill("#id_button_color", "#ABCDEF")
        page.fill("#id_card_radius", "30")
        page.fill("#id_call_to_action", HOSTILE_TEXT)
        assert computed(page, ".start")["bg"] == hex_to_rgb("#ABCDEF")
        assert computed(page, ".card")["radius"] == "30px"
        assert computed(page, ".cta")["text"] == HOSTILE_TEXT
        page.fill("#id_button_color", "not a colour")  # invalid input: a safe fallback
        assert computed(page, ".start")["bg"].startswith("rgb(")
        page.wait_for_timeout(300)
        assert shadow(page, "return root.querySelectorAll('img').length;") == 0

        # A real call from the preview, on the server's own origin, which the widget does not
        # allow: create-call lets the staff session through, and the call socket the same page.
        page.click("#widget-preview voice-widget .start")
        page.wait_for_function(
            "() => ['listening', 'thinking', 'speaking']"
            ".includes(document.querySelector('voice-widget').debug.state)",
            timeout=60000,
        )
        call_id = debug(page)["callId"]
        page.click("#widget-preview voice-widget .end")
        wait_state(page, "ended")
        call = daphne_server.api("GET", f"/calls/{call_id}", expect=200)["data"]
        assert call["widget_id"] == widget["id"]
        assert call["origin"] == base
        assert dialogs == []
    finally:
        context.close()

    # The same request without the session: the own origin alone allows nothing.
    anonymous = httpx.post(
        f"{base}/v1/widgets/create-call",
        json={"widget_id": widget["id"]},
        headers={"Origin": base},
        timeout=30,
    )
    assert anonymous.status_code == 403, anonymous.text


def test_admin_preview_shows_placement_and_position_from_the_form(
    daphne_server, make_widget, chromium, admin_login
):
    widget = make_widget(call_to_action="Talk to us")  # inline
    context = chromium.new_context()
    page = context.new_page()
    try:
        base = daphne_server.widget_base
        page.goto(f"{base}/admin/login/?next=/admin/widgets/widget/{widget['id']}/change/")
        page.fill("#id_username", admin_login[0])
        page.fill("#id_password", admin_login[1])
        page.click("input[type=submit]")
        page.wait_for_selector("#widget-preview voice-widget")
        assert page.locator("#id_placement").input_value() == "inline"
        assert shadow(page, "return !!root.querySelector('.launcher');") is False

        page.select_option("#id_placement", "floating")
        page.select_option("#id_position", "top-left")
        launcher = page.locator("#widget-preview voice-widget .launcher")
        assert launcher.get_attribute("aria-label") == "Talk to us"
        # It floats in the preview box's corner, not in the admin page's.
        box = page.locator("#widget-preview").bounding_box()
        spot = launcher.bounding_box()
        assert abs(spot["x"] - box["x"] - 16) < 2 and abs(spot["y"] - box["y"] - 16) < 2
        page.select_option("#id_position", "bottom-right")
        spot = launcher.bounding_box()
        assert abs(box["x"] + box["width"] - spot["x"] - spot["width"] - 16) < 2
        assert abs(box["y"] + box["height"] - spot["y"] - spot["height"] - 16) < 2
        launcher.click()
        assert shadow(page, "return !root.querySelector('.panel').hidden;")

        # Saved, it is what the API and the embed read.
        page.click("input[name=_continue]")
        page.wait_for_selector("#widget-preview voice-widget")
        data = daphne_server.api("GET", f"/widgets/{widget['id']}", expect=200)["data"]
        assert (data["placement"], data["position"]) == ("floating", "bottom-right")
    finally:
        context.close()
