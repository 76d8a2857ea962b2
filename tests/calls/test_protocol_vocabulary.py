"""The call socket's vocabulary is defined once (`calls.protocol`) and every other place that
lists it agrees: the widget's close-code texts and the messages it sends and handles, the
README's protocol section, and the consumer and runtime, which name no code or type by hand."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from calls.protocol import ClientMessage, CloseCode, ServerMessage

ROOT = Path(__file__).resolve().parents[2]
CALL_JS = (ROOT / "static" / "widget" / "call.js").read_text()
WIDGET_JS = CALL_JS + (ROOT / "static" / "widget" / "webrtc.js").read_text()
README = (ROOT / "README.md").read_text()
# Sent by daphne itself (not by this code) when an application crashes: the widget knows it.
DAPHNE_CODES = {1011}


def js_object_body(name: str) -> str:
    match = re.search(
        rf"^(?:export )?const {name} = (?:Object\.freeze\()?\{{\n(.*?)^\}}", CALL_JS, re.M | re.S
    )
    assert match, f"{name} not found in call.js"
    return match.group(1)


def widget_texts() -> dict[str, str]:
    return dict(re.findall(r'^\s*(\w+): "([^"]+)",\s*$', js_object_body("TEXT"), re.M))


def widget_close_texts() -> dict[int, str]:
    """CLOSE_TEXT's entries, each value resolved to its text."""
    texts = widget_texts()
    entries = {}
    for code, value in re.findall(
        r"^\s*(\d+): (.+?),(?:\s*//.*)?$", js_object_body("CLOSE_TEXT"), re.M
    ):
        if value.startswith("TEXT."):
            entries[int(code)] = texts.get(value.removeprefix("TEXT."), "")
        else:
            entries[int(code)] = ast.literal_eval(value)
    return entries


def readme_protocol_section() -> str:
    start = README.index("## The call socket protocol")
    end = README.find("\n## ", start + 1)
    return README[start : end if end > 0 else None]


def test_every_close_code_is_one_daphne_can_send():
    # autobahn refuses anything but 1000 and 3000-4999 from an application (and raises).
    assert all(code == 1000 or 3000 <= code <= 4999 for code in CloseCode)


def test_the_widget_close_codes_are_frozen_and_parsed():
    assert "export const CLOSE_TEXT = Object.freeze({" in CALL_JS
    assert len(widget_close_texts()) >= len(CloseCode) - 1  # the parser found the entries


@pytest.mark.parametrize("code", [c for c in CloseCode if c != CloseCode.NORMAL], ids=str)
def test_every_code_the_server_sends_has_a_text_in_the_widget(code):
    text = widget_close_texts().get(int(code), "")
    assert len(text) > 10, f"{code!r} has no text in call.js CLOSE_TEXT"


def test_the_widget_lists_no_code_the_server_does_not_send():
    extra = set(widget_close_texts()) - {int(c) for c in CloseCode} - DAPHNE_CODES
    assert extra == set()


def test_busy_is_said_alike_for_the_503_and_the_4503():
    busy = widget_close_texts()[CloseCode.BUSY]
    assert "busy" in busy and "try again in a moment" in busy
    assert "if (status === 503) return TEXT.busy;" in CALL_JS
    assert widget_texts()["busy"] == busy


def test_the_readme_close_code_table_matches_close_code():
    rows = re.findall(r"^\| (\d{4}) \|", readme_protocol_section(), re.M)
    assert sorted(int(code) for code in rows) == sorted(int(c) for c in CloseCode)


@pytest.mark.parametrize("kind", [*ClientMessage, *ServerMessage], ids=str)
def test_every_message_type_is_in_the_readme_protocol_section(kind):
    assert f'"type": "{kind}"' in readme_protocol_section()


def test_the_widget_sends_and_handles_only_types_of_the_vocabulary():
    sent = set(re.findall(r'(?:\.|\b)_?send\(\{ type: "([\w.]+)"', WIDGET_JS))
    handled = set(re.findall(r'case "([\w.]+)":', CALL_JS))
    assert {"hello", "playback", "webrtc.offer"} <= sent and "call.ended" in handled
    assert sent <= set(ClientMessage)
    assert handled <= set(ServerMessage)


@pytest.mark.parametrize("module", ["calls/consumers.py", "calls/runtime.py"])
def test_consumer_and_runtime_name_no_close_code_or_message_type_by_hand(module):
    tree = ast.parse((ROOT / module).read_text())
    codes = {int(c) for c in CloseCode} | {1008, 1009, 1011}
    literal_codes = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value in codes
    ]
    literal_types = [
        value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        for key, value in zip(node.keys, node.values, strict=True)
        if isinstance(key, ast.Constant) and key.value == "type" and isinstance(value, ast.Constant)
    ]
    assert literal_codes == [] and literal_types == []
