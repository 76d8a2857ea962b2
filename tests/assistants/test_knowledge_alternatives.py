"""Alternative phrasings on knowledge entries: stored, returned, bounded (400 naming the field),
and handed to the reply engine's config."""

from __future__ import annotations

import pytest

from assistants.models import Assistant, KnowledgeEntry
from assistants.serializers import MAX_ALTERNATIVE_LENGTH, MAX_ALTERNATIVES, MAX_ALTERNATIVES_TOTAL

BODY = {
    "name": "Workshop",
    "system_prompt": "You are a helpful agent.",
    "knowledge": [
        {
            "question": "Do you service electric bikes?",
            "answer": "Yes, all brands.",
            "alternatives": ["Can you fix my e-bike?", "Do you repair pedelecs?"],
        },
        {"question": "When are you open?", "answer": "Nine to six."},
    ],
}


def knowledge_with(alternatives) -> dict:
    return {**BODY, "knowledge": [{"question": "q", "answer": "a", "alternatives": alternatives}]}


@pytest.mark.django_db
def test_alternatives_are_stored_and_returned(api, organization):
    response = api.post("/v1/assistants", BODY)
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["knowledge"] == [
        BODY["knowledge"][0],
        {"question": "When are you open?", "answer": "Nine to six.", "alternatives": []},
    ]
    entry = KnowledgeEntry.objects.get(question="Do you service electric bikes?")
    assert entry.alternatives == ["Can you fix my e-bike?", "Do you repair pedelecs?"]
    got = api.get(f"/v1/assistants/{data['id']}").json()["data"]["knowledge"]
    assert got[0]["alternatives"] == ["Can you fix my e-bike?", "Do you repair pedelecs?"]


@pytest.mark.django_db
def test_patching_knowledge_replaces_alternatives(api, make_assistant):
    assistant = make_assistant(knowledge=BODY["knowledge"])
    new = [{"question": "Q", "answer": "A", "alternatives": ["another way"]}]
    response = api.patch(f"/v1/assistants/{assistant.id}", {"knowledge": new})
    assert response.status_code == 200, response.content
    assert response.json()["data"]["knowledge"] == new
    assert list(assistant.knowledge.values_list("alternatives", flat=True)) == [["another way"]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "alternatives",
    [
        ["x"] * (MAX_ALTERNATIVES + 1),
        ["x" * (MAX_ALTERNATIVE_LENGTH + 1)],
        [""],
        [1],
        [["nested"]],
        "one string",
        {"a": "b"},
        None,
    ],
    ids=["too-many", "too-long", "blank", "number", "nested", "string", "object", "null"],
)
def test_bad_alternatives_are_400_naming_the_field(api, alternatives):
    response = api.post("/v1/assistants", knowledge_with(alternatives))
    assert response.status_code == 400, response.content
    payload = response.json()
    assert "knowledge" in payload["errors"]
    assert "alternatives" in str(payload["errors"]["knowledge"])
    assert "alternatives" in payload["message"]
    assert Assistant.objects.count() == 0


@pytest.mark.django_db
def test_alternatives_at_their_limits_are_accepted(api):
    body = knowledge_with(["y" * MAX_ALTERNATIVE_LENGTH] * MAX_ALTERNATIVES)
    response = api.post("/v1/assistants", body)
    assert response.status_code == 201, response.content


@pytest.mark.django_db
def test_alternatives_are_bounded_across_entries(api):
    per_entry = MAX_ALTERNATIVES
    count = MAX_ALTERNATIVES_TOTAL // per_entry + 1
    entries = [
        {
            "question": f"q{i}",
            "answer": "a",
            "alternatives": [f"alt {i} {j}" for j in range(per_entry)],
        }
        for i in range(count)
    ]
    response = api.post("/v1/assistants", {**BODY, "knowledge": entries})
    assert response.status_code == 400, response.content
    assert "knowledge" in response.json()["errors"]


@pytest.mark.django_db
def test_the_engine_config_carries_the_alternatives(make_assistant):
    from calls.models import Call
    from calls.runtime import session_config_for
    from voice.understanding import entries_of

    assistant = make_assistant(knowledge=BODY["knowledge"])
    call = Call.objects.create(assistant=assistant, organization=assistant.organization)
    entries = entries_of(session_config_for(call).knowledge)
    assert entries[0].question == "Do you service electric bikes?"
    assert entries[0].alternatives == ("Can you fix my e-bike?", "Do you repair pedelecs?")
    assert entries[1].alternatives == ()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("given", "valid", "stored"),
    [
        ("", True, []),
        ('["Can you fix my e-bike?"]', True, ["Can you fix my e-bike?"]),
        ('"just a string"', False, None),
        ('["' + "x" * (MAX_ALTERNATIVE_LENGTH + 1) + '"]', False, None),
        ("[1, 2]", False, None),
    ],
)
def test_admin_form_checks_alternatives_as_the_api_does(assistant, given, valid, stored):
    from assistants.admin import KnowledgeEntryForm

    form = KnowledgeEntryForm(
        data={"position": 0, "question": "Q?", "answer": "A.", "alternatives": given},
        instance=KnowledgeEntry(assistant=assistant),
    )
    assert form.is_valid() is valid, form.errors
    if valid:
        assert form.save().alternatives == stored
    else:
        assert "alternatives" in form.errors
