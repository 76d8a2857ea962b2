"""The admin's live preview renders the real widget UI (static/widget/ui.js) from the form."""

from __future__ import annotations

import secrets

import pytest
from widgetpage import HOSTILE_TEXT, computed, hex_to_rgb, shadow

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


def test_admin_preview_is_the_real_widget_and_follows_the_form(
    daphne_server, make_widget, chromium, admin_login
):
    widget = make_widget(button_color="#123456", card_radius=5, call_to_action="Talk to us")
    context = chromium.new_context()
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
        assert computed(page, ".start")["disabled"]  # a preview never starts calls

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
        assert dialogs == []
    finally:
        context.close()
