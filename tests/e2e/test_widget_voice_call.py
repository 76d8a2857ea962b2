"""A whole voice call from a real browser: host page on 127.0.0.1 embeds the widget from
localhost, the fake microphone asks a question (espeak-ng speech made at test time), the real
server's offline speech stack answers out loud, and the call is stored completed with its
transcript and recording."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from liveserver import have_speech_tools, launch_chromium, synth_speech
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from widgetpage import WIDGET, debug, shadow, wait_state

pytestmark = [pytest.mark.browser, pytest.mark.slow]

QUESTION = "Where is the shop?"
GREETING = "Hi! How can I help?"


def wait_for(page, what: str, js: str, *, arg=None, timeout: float = 60000) -> None:
    """page.wait_for_function that says what the widget and the server were doing on timeout."""
    try:
        page.wait_for_function(js, arg=arg, timeout=timeout)
    except PlaywrightTimeout as exc:
        state = debug(page)
        message = shadow(page, "return root.querySelector('.message').textContent;")
        raise AssertionError(
            f"timed out waiting for {what}; widget debug={state} message={message!r} "
            f"transcript={transcript_turns(page)}"
        ) from exc


def transcript_turns(page) -> list[tuple[str, str]]:
    return shadow(
        page,
        "return [...root.querySelectorAll('.transcript li')].map(l =>"
        " [l.classList.contains('user') ? 'user' : 'assistant', l.lastChild.textContent]);",
    )


@pytest.fixture(scope="module")
def question_wav(tmp_path_factory):
    if not have_speech_tools():
        pytest.skip(
            "espeak-ng and sox are needed to make the test speech (make test installs them)"
        )
    # The question comes after the greeting: 5 s of silence first, then silence to the end;
    # asked again 9 s later in case the browser's audio processing made the first misheard.
    return synth_speech(
        QUESTION,
        tmp_path_factory.mktemp("speech") / "question.wav",
        pad_before=5,
        pad_after=8,
        speed=140,
        repeat_after=9,
    )


@pytest.fixture(scope="module")
def mic_browser(playwright_session, question_wav):
    browser = launch_chromium(playwright_session, fake_mic_wav=question_wav)
    try:
        yield browser
    finally:
        browser.close()


@pytest.mark.timeout(240)
def test_voice_call_end_to_end(daphne_server, mic_browser, artifacts_dir):
    assistant = daphne_server.create_assistant(
        name="E2E voice",
        starting_message=GREETING,
        speech={"tts": {"provider": "espeak", "options": {}}},
    )
    widget = daphne_server.create_widget(
        assistantId=assistant["id"],
        allowed_origins=[daphne_server.page_base],
        terms_and_condition=True,
        terms_and_condition_content="Calls are recorded.",
        call_to_action="Ask where our shop is",
    )
    context = mic_browser.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(daphne_server.demo_url(widget["id"]))
        page.click("voice-widget .accept-input")
        page.click("voice-widget .start")  # a real click: the browser's autoplay rules apply

        # The greeting is heard: audio with energy actually played in the page.
        wait_for(
            page,
            "the greeting to be heard",
            f"() => {WIDGET}.debug.peakRms > 0.02 && {WIDGET}.debug.playedMs > 500",
        )
        call_id = debug(page)["callId"]
        assert call_id

        # The spoken question shows up as a user turn in the widget.
        wait_for(
            page,
            "the spoken question in the transcript",
            f"() => [...{WIDGET}.shadowRoot.querySelectorAll('.transcript li.user')]"
            ".some(l => /shop/i.test(l.textContent))",
        )
        greeting_ms = debug(page)["playedMs"]
        # The answer is spoken and shown.
        wait_for(
            page,
            "the answer in the transcript",
            f"() => [...{WIDGET}.shadowRoot.querySelectorAll('.transcript li.assistant')]"
            ".some(l => /harbou?r/i.test(l.textContent))",
        )
        wait_for(
            page,
            "the answer to be heard",
            f"(ms) => {WIDGET}.debug.playedMs > ms + 1000 && {WIDGET}.debug.outputRms > 0.01",
            arg=greeting_ms,
            timeout=30000,
        )
        artifacts_dir.mkdir(exist_ok=True)
        page.screenshot(path=str(Path(artifacts_dir) / "widget-mid-call.png"))
        turns = transcript_turns(page)
        assert any(role == "user" and "shop" in text.lower() for role, text in turns), turns

        page.wait_for_timeout(1500)
        page.click("voice-widget .end")
        wait_state(page, "ended", timeout=15000)
        assert debug(page)["micLive"] is False
    finally:
        context.close()

    # The server's record: completed, with duration, recording and both turns.
    deadline = time.monotonic() + 20
    while True:
        call = daphne_server.api("GET", f"/calls/{call_id}", expect=200)["data"]
        if call["status"] == 2 and call["recording_url"] or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert call["status"] == 2 and call["status_label"] == "completed", call
    assert call["duration"] and call["duration"] > 3, call
    assert call["recording_url"], call
    assert call["widget_id"] == widget["id"]
    assert call["origin"] == daphne_server.page_base
    entries = daphne_server.api("GET", f"/calls/{call_id}/transcripts", expect=200)["data"]
    texts = [(e["role"], e["text"]) for e in entries["transcripts"]]
    assert any(role == "user" and "shop" in text.lower() for role, text in texts), texts
    assert any(role == "assistant" and "harbour" in text.lower() for role, text in texts), texts
    assert not errors
