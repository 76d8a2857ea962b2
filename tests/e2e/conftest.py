"""Browser tests: a real daphne (own SQLite file in a temp VAR_DIR) and a real headless Chromium.

Host pages are served from http://127.0.0.1:PORT (/demo/?widget=ID) and embed the widget from
http://localhost:PORT, so every test crosses origins like a customer's site does. These tests
never touch pytest-django's test database: the server owns its database.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from liveserver import CHROMIUM, LiveServer, launch_chromium, start_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).setLevel(logging.WARNING)
ARTIFACTS = ROOT / "test-artifacts"


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="package")
def daphne_server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (Debian package `chromium`)")
    # WebSocket audio for the shared server: its own tests (test_widget_webrtc.py) run
    # WebRTC where only loopback can be used, and ICE here would use the other interface.
    server: LiveServer = start_server(
        tmp_path_factory.mktemp("e2e-var"),
        extra_env={"WEBRTC_ENABLED": "0", "WEBRTC_HOST_ADDRESSES": "127.0.0.1"},
    )
    try:
        yield server
    finally:
        died = not server.alive()
        log = server.log_text()
        server.stop()
        if died:
            pytest.fail(f"daphne died during the e2e tests; its log:\n{log}", pytrace=False)


@pytest.fixture(scope="package")
def playwright_session():
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        yield pw
    finally:
        pw.stop()


@pytest.fixture(scope="package")
def chromium(playwright_session):
    """Chromium with a fake microphone device (a beep); permission comes per context."""
    browser = launch_chromium(playwright_session, extra_args=["--use-fake-device-for-media-stream"])
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="package")
def e2e_assistant(daphne_server):
    return daphne_server.create_assistant(
        speech={"tts": {"provider": "espeak", "options": {}}},
    )


@pytest.fixture
def make_widget(daphne_server, e2e_assistant):
    """Creates a widget for the e2e assistant that allows the 127.0.0.1 host page by default."""

    def make(**fields):
        fields.setdefault("assistantId", e2e_assistant["id"])
        fields.setdefault("allowed_origins", [daphne_server.page_base])
        return daphne_server.create_widget(**fields)

    return make


class PageProbe:
    """Collects what a page did that a test may want to assert on."""

    def __init__(self, page):
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()


@pytest.fixture
def open_page(chromium):
    """open_page(url, microphone=True) -> (page, probe); the widget has painted when it returns."""
    contexts = []

    def open_(url: str, *, microphone: bool = True, before_goto=None):
        context = chromium.new_context(permissions=["microphone"] if microphone else [])
        contexts.append(context)
        page = context.new_page()
        probe = PageProbe(page)
        if before_goto:
            before_goto(page)
        page.goto(url)
        wait_painted(page)
        return page, probe

    yield open_
    for context in contexts:
        context.close()


def wait_painted(page, timeout: float = 15000):
    page.wait_for_function(
        "() => performance.getEntriesByName('voice-widget:first-paint').length > 0 &&"
        " document.querySelector('voice-widget')?.shadowRoot?.querySelector('.card')",
        timeout=timeout,
    )


@pytest.fixture(scope="package")
def artifacts_dir():
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
