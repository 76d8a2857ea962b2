"""DTMF keys (phone calls): the assistant's rules, with fake providers."""

from __future__ import annotations

from conftest import fast_config

from voice.events import AssistantSpeechStopped, Interruption, Transcript


def spoken(rec) -> list[str]:
    return [t.text for t in rec.of(Transcript) if t.role == "assistant" and t.final]


RULES = {
    "0": ("say", "Our opening hours are nine to five."),
    "#": ("end_call", "Thanks, bye {{name}}."),
    "9": ("end_call", ""),
}


async def test_a_say_rule_speaks_its_line(make_session):
    session, rec = await make_session(fast_config(dtmf_rules=RULES))
    await rec.wait_type(AssistantSpeechStopped)
    session.push_digit("0")
    await rec.wait_for(lambda e: len(rec.of(AssistantSpeechStopped)) == 2)
    assert spoken(rec) == ["Hi Ann.", "Our opening hours are nine to five."]
    assert not session.closed


async def test_a_say_rule_stops_what_the_assistant_was_saying(make_session):
    config = fast_config(dtmf_rules=RULES, first_message="A long greeting. " * 20)
    session, rec = await make_session(config)
    await rec.wait_type(Transcript)  # the greeting has started
    session.push_digit("0")
    await rec.wait_type(Interruption)
    await rec.wait_for(lambda e: "Our opening hours are nine to five." in spoken(rec))


async def test_an_end_call_rule_says_its_line_and_hangs_up(make_session):
    session, rec = await make_session(fast_config(dtmf_rules=RULES))
    await rec.wait_type(AssistantSpeechStopped)
    session.push_digit("#")
    assert (await rec.ended()).reason == "assistant_ended"
    assert spoken(rec)[-1] == "Thanks, bye Ann."


async def test_an_end_call_rule_without_a_line_says_the_goodbye_line(make_session):
    session, rec = await make_session(fast_config(dtmf_rules=RULES))
    await rec.wait_type(AssistantSpeechStopped)
    session.push_digit("9")
    assert (await rec.ended()).reason == "assistant_ended"
    assert spoken(rec)[-1] == "Thank you for calling. Goodbye!"


async def test_keys_without_a_rule_change_nothing(make_session):
    session, rec = await make_session(fast_config(dtmf_rules=RULES))
    await rec.wait_type(AssistantSpeechStopped)
    before = list(rec.events)
    session.push_digit("5")
    session.push_digit("x")
    assert rec.events == before and not session.closed
