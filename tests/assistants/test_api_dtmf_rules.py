"""`dtmf_rules` (seed 002, free-form): the rules a phone call acts on are validated, and the
runtime reads only those."""

from __future__ import annotations

import pytest

from assistants.models import dtmf_rules_of

BODY = {"name": "Phone", "system_prompt": "Be brief."}


@pytest.mark.django_db
def test_rules_the_phone_acts_on_are_stored_and_read(api):
    rules = {
        "0": {"action": "say", "text": "We open at nine."},
        "#": {"action": "end_call"},
        "note": {"anything": ["kept", "as given"]},
    }
    response = api.post("/v1/assistants", {**BODY, "dtmf_rules": rules})
    assert response.status_code == 201, response.content
    assert response.json()["data"]["dtmf_rules"] == rules
    assert dtmf_rules_of(rules) == {"0": ("say", "We open at nine."), "#": ("end_call", "")}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rules", "path"),
    [
        ({"5": {"action": "transfer"}}, ["5", "action"]),
        ({"55": {"action": "say", "text": "x"}}, ["55"]),
        ({"5": {"action": "say"}}, ["5", "text"]),
        ({"5": {"action": "say", "text": 7}}, ["5", "text"]),
        ({"5": {"action": "say", "text": "x" * 501}}, ["5", "text"]),
    ],
)
def test_a_bad_rule_is_a_400_naming_the_key(api, rules, path):
    response = api.post("/v1/assistants", {**BODY, "dtmf_rules": rules})
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]["dtmf_rules"] if "errors" in response.json() else None
    assert errors is not None, response.json()
    for key in path:
        errors = errors[key]
    assert errors


def test_stored_rules_of_any_shape_never_break_a_call():
    assert dtmf_rules_of(None) == {}
    assert dtmf_rules_of({"1": "say hi", "2": {"action": "say", "text": ["x"]}}) == {}
