"""The part of TwiML the emulator executes: ``<Connect><Stream>`` with ``<Parameter>``s.

Anything else (``<Say>``, ``<Pause>``, ``<Hangup/>``...) is noted and skipped: a call whose TwiML
has no bidirectional stream simply runs out of instructions and completes, as on Twilio.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field


class TwimlError(ValueError):
    pass


@dataclass
class StreamSpec:
    url: str
    name: str = ""
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass
class TwimlPlan:
    stream: StreamSpec | None  # the <Connect><Stream>, if any
    skipped: list[str] = field(default_factory=list)  # verbs the emulator does not execute


def parse_twiml(text: str) -> TwimlPlan:
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as exc:
        raise TwimlError(f"invalid TwiML: {exc}") from exc
    if root.tag != "Response":
        raise TwimlError("TwiML root element must be <Response>")
    plan = TwimlPlan(stream=None)
    for verb in root:
        if verb.tag == "Connect" and plan.stream is None:
            stream = verb.find("Stream")
            if stream is None or not stream.get("url"):
                raise TwimlError("<Connect> needs a <Stream url=...>")
            parameters = {
                p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")
            }
            plan.stream = StreamSpec(stream.get("url", ""), stream.get("name", ""), parameters)
        else:
            plan.skipped.append(verb.tag)
    return plan
