"""Typing beside talking (issue 12, item 3), in a real Chromium against the real server: a
question typed into the widget's text box during a call is answered aloud and in the
transcript and stored like a spoken turn; with the microphone refused the widget offers
"Continue by typing" and runs a text-only call."""

from __future__ import annotations

import time
import wave

import pytest
from liveserver import launch_chromium
from widgetpage import (
    WIDGET,
    debug,
    message_text,
    shadow,
    transcript_lines,
    wait_state,
    wait_widget,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

QUESTION = "Where is the shop?"
GREETING = "Hi! How can I help?"


def stored(daphne_server, call_id: str) -> list[tuple[str, str]]:
    """The call's stored transcript once it has ended (completed)."""
    deadline = time.monotonic() + 20
    while True:
        call = daphne_server.api("GET", f"/calls/{call_id}", expect=200)["data"]
        if call["status"] == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert call["status_label"] == "completed", call
    entries = daphne_server.api("GET", f"/calls/{call_id}/transcripts", expect=200)["data"]
    return [(e["role"], e["text"]) for e in entries["transcripts"]]


def greeting_said(page, what: str) -> None:
    """The whole greeting has been said (its final line is in the transcript)."""
    wait_widget(
        page,
        what,
        f"(g) => {WIDGET}.debug.playedMs > 500 && [...{WIDGET}.shadowRoot.querySelectorAll("
        "'.transcript li.assistant:not(.partial) .text')].some(t => t.textContent === g)",
        arg=GREETING,
    )


def answer_heard(page, after_ms: int) -> None:
    wait_widget(
        page,
        "the answer in the transcript",
        f"() => [...{WIDGET}.shadowRoot.querySelectorAll('.transcript li.assistant')]"
        ".some(l => /harbou?r/i.test(l.textContent))",
    )
    wait_widget(
        page,
        "the answer to be heard",
        f"(ms) => {WIDGET}.debug.playedMs > ms + 1000",
        arg=after_ms,
        timeout=30000,
    )


@pytest.fixture(scope="module")
def quiet_mic_browser(playwright_session, tmp_path_factory):
    """Chromium whose fake microphone is silent: only typed lines reach the assistant."""
    path = tmp_path_factory.mktemp("mic") / "silence.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\x00\x00" * 16000 * 2)
    browser = launch_chromium(playwright_session, fake_mic_wav=path)
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture
def typing_widget(daphne_server):
    assistant = daphne_server.create_assistant(
        name="E2E typing",
        starting_message=GREETING,
        speech={"tts": {"provider": "espeak", "options": {}}},
    )
    return daphne_server.create_widget(
        assistantId=assistant["id"], allowed_origins=[daphne_server.page_base]
    )


@pytest.mark.timeout(180)
def test_a_typed_question_is_answered_aloud_shown_and_stored(
    daphne_server, quiet_mic_browser, typing_widget, artifacts_dir
):
    context = quiet_mic_browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(daphne_server.demo_url(typing_widget["id"]))
        page.wait_for_function(f"() => {WIDGET}?.shadowRoot?.querySelector('.start')")
        assert shadow(page, "return root.querySelector('form.type');") is None  # not before
        page.click("voice-widget .start")
        greeting_said(page, "the greeting to be heard")
        call_id = debug(page)["callId"]
        box = "voice-widget form.type input"
        label = shadow(
            page, "return root.querySelector('form.type input').getAttribute('aria-label');"
        )
        assert label == "Type a message"
        assert shadow(page, "return root.querySelector('form.type .send').textContent;") == "Send"
        greeting_ms = debug(page)["playedMs"]
        page.fill(box, QUESTION)
        page.press(box, "Enter")  # Enter sends
        wait_widget(
            page,
            "the typed line in the transcript as the visitor's",
            f"(q) => [...{WIDGET}.shadowRoot.querySelectorAll('.transcript li.user')]"
            ".some(l => l.textContent.includes(q))",
            arg=QUESTION,
        )
        assert page.input_value(box) == ""
        answer_heard(page, greeting_ms)
        page.screenshot(path=str(artifacts_dir / "widget-typed-question.png"))
        page.click("voice-widget .end")
        wait_state(page, "ended", timeout=15000)
        assert shadow(page, "return root.querySelector('form.type');") is None
    finally:
        context.close()
    lines = stored(daphne_server, call_id)
    assert lines[0] == ("assistant", GREETING), lines
    assert ("user", QUESTION) in lines, lines
    after = lines[lines.index(("user", QUESTION)) + 1 :]
    assert any(role == "assistant" and "harbour" in text.lower() for role, text in after), lines
    assert not errors


@pytest.mark.timeout(180)
def test_microphone_denied_offers_a_text_only_call(
    daphne_server, chromium, typing_widget, artifacts_dir
):
    context = chromium.new_context(permissions=[])  # the microphone is refused
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(daphne_server.demo_url(typing_widget["id"]))
        page.wait_for_function(f"() => {WIDGET}?.shadowRoot?.querySelector('.start')")
        page.click("voice-widget .start")
        wait_state(page, "error")
        assert "Microphone access was denied" in message_text(page)
        offer = "voice-widget button.offer"
        assert page.text_content(offer) == "Continue by typing"
        assert shadow(page, "return root.activeElement?.className;") == "offer secondary"
        page.click(offer)  # a click: the assistant may play sound
        greeting_said(page, "the greeting of the text-only call")
        assert shadow(page, "return root.querySelector('button.offer');") is None
        assert "type your messages" in message_text(page)
        assert shadow(page, "return root.querySelector('.mute').hidden;") is True
        assert debug(page)["audio"] == "websocket" and debug(page)["micLive"] is False
        # Focus went to the text box: the visitor types at once.
        assert shadow(page, "return root.activeElement?.tagName;") == "INPUT"
        call_id = debug(page)["callId"]
        greeting_ms = debug(page)["playedMs"]
        page.keyboard.type(QUESTION)
        page.click("voice-widget form.type .send")
        answer_heard(page, greeting_ms)
        assert ("user", QUESTION) in transcript_lines(page)
        page.screenshot(path=str(artifacts_dir / "widget-text-only.png"))
        page.click("voice-widget .end")
        wait_state(page, "ended", timeout=15000)
    finally:
        context.close()
    lines = stored(daphne_server, call_id)
    assert lines[:2] == [("assistant", GREETING), ("user", QUESTION)], lines
    assert any(role == "assistant" and "harbour" in text.lower() for role, text in lines[2:])
    call = daphne_server.api("GET", f"/calls/{call_id}", expect=200)["data"]
    assert call["end_reason"] == "hangup", call
    assert not errors
