"""The assistant's analysis plan over the API and in the admin: defaults, what is stored, and a
400 naming the sub-field for anything else."""

from __future__ import annotations

import json

import pytest

from assistants.models import Assistant, default_analysis_plan
from voice.providers.openai_http import parse_endpoints

BODY = {"name": "Sales", "system_prompt": "You sell."}
PLAN = {
    "enabled": True,
    "summary": True,
    "outcomes": [
        {"label": "Interested", "description": "The caller wants a demo"},
        {"label": "Not interested", "description": "The caller declines"},
    ],
    "data": [
        {"name": "email", "type": "email", "description": "Where to write"},
        {"name": "plan", "type": "enum", "description": "Plan", "values": ["Basic", "Premium"]},
        {"name": "seats", "type": "integer", "description": "Seats needed"},
    ],
    "analyzer": "offline",
}


@pytest.fixture
def endpoints(settings):
    raw = json.dumps({"local": {"base_url": "http://127.0.0.1:11434/v1", "allow_private": True}})
    settings.VOICE_ENDPOINTS = parse_endpoints(raw, {})


@pytest.mark.django_db
class TestApi:
    def test_an_assistant_without_a_plan_gets_the_default_one(self, api):
        created = api.post("/v1/assistants", BODY)
        assert created.status_code == 201, created.content
        assert created.json()["data"]["analysis_plan"] == default_analysis_plan()
        assert default_analysis_plan()["summary"] is True
        assert default_analysis_plan()["analyzer"] == "offline"

    def test_a_valid_plan_is_stored_and_shown_with_defaults_filled(self, api):
        created = api.post("/v1/assistants", {**BODY, "analysis_plan": PLAN})
        assert created.status_code == 201, created.content
        assert created.json()["data"]["analysis_plan"] == PLAN
        stored = Assistant.objects.get(pk=created.json()["data"]["id"]).analysis_plan
        assert stored == PLAN

        patched = api.patch(
            f"/v1/assistants/{created.json()['data']['id']}",
            {"analysis_plan": {"outcomes": [{"label": "successful"}]}},
        )
        assert patched.status_code == 200, patched.content
        plan = patched.json()["data"]["analysis_plan"]
        # Replaced whole: what was not sent takes its default.
        assert plan == {
            **default_analysis_plan(),
            "outcomes": [{"label": "successful", "description": ""}],
        }

    def test_the_llm_analyzer_takes_an_endpoint_by_name_model_and_timeout(self, api, endpoints):
        plan = {**PLAN, "analyzer": "llm", "endpoint": "local", "model": "llama3", "timeout": 20}
        created = api.post("/v1/assistants", {**BODY, "analysis_plan": plan})
        assert created.status_code == 201, created.content
        assert created.json()["data"]["analysis_plan"]["endpoint"] == "local"

    @pytest.mark.parametrize(
        "plan, named",
        [
            ("yes", "analysis_plan"),
            ({"summary": "yes"}, "analysis_plan.summary"),
            ({"enabled": 1}, "analysis_plan.enabled"),
            ({"colour": "red"}, "analysis_plan.colour"),
            ({"analyzer": "gpt"}, "analysis_plan.analyzer"),
            ({"outcomes": [{"label": "a"}, {"label": "A"}]}, "analysis_plan.outcomes"),
            ({"outcomes": [{"description": "no label"}]}, "analysis_plan.outcomes[0].label"),
            ({"outcomes": [{"label": "x" * 65}]}, "analysis_plan.outcomes[0].label"),
            ({"outcomes": [{"label": "a", "score": 1}]}, "analysis_plan.outcomes[0].score"),
            ({"outcomes": "successful"}, "analysis_plan.outcomes"),
            ({"data": [{"name": "email", "type": "url"}]}, "analysis_plan.data[0].type"),
            ({"data": [{"name": "my email", "type": "email"}]}, "analysis_plan.data[0].name"),
            ({"data": [{"name": "1st", "type": "string"}]}, "analysis_plan.data[0].name"),
            (
                {"data": [{"name": "a", "type": "string"}, {"name": "a", "type": "date"}]},
                "analysis_plan.data",
            ),
            ({"data": [{"name": "plan", "type": "enum"}]}, "analysis_plan.data[0].values"),
            (
                {"data": [{"name": "plan", "type": "enum", "values": ["a", "A"]}]},
                "analysis_plan.data[0].values",
            ),
            (
                {"data": [{"name": "n", "type": "integer", "values": ["1"]}]},
                "analysis_plan.data[0].values",
            ),
            ({"analyzer": "llm"}, "analysis_plan.analyzer"),  # no endpoint configured
            ({"endpoint": "nope"}, "analysis_plan.endpoint"),
            ({"timeout": 500}, "analysis_plan.timeout"),
            ({"timeout": "5"}, "analysis_plan.timeout"),
        ],
    )
    def test_a_bad_plan_is_400_naming_the_sub_field_and_changes_nothing(
        self, api, assistant, settings, plan, named
    ):
        settings.VOICE_ENDPOINTS = {}
        before = Assistant.objects.filter(pk=assistant.pk).values().get()
        created = api.post("/v1/assistants", {**BODY, "analysis_plan": plan})
        updated = api.patch(f"/v1/assistants/{assistant.id}", {"analysis_plan": plan})
        for response in (created, updated):
            assert response.status_code == 400, response.content
            body = response.json()
            assert f"Invalid {named}:" in body["message"], body["message"]
            assert "analysis_plan" in body["errors"]
        assert Assistant.objects.count() == 1
        assert Assistant.objects.filter(pk=assistant.pk).values().get() == before


def test_admin_form_validates_the_analysis_plan_as_the_api_does(assistant):
    from django.forms import modelform_factory

    from assistants.admin import AssistantAdminForm

    Form = modelform_factory(
        type(assistant), form=AssistantAdminForm, fields=["name", "system_prompt", "analysis_plan"]
    )
    data = {"name": "Sales", "system_prompt": "Sell.", "speech": "{}"}
    bad = Form(
        data={**data, "analysis_plan": '{"data": [{"name": "x", "type": "enum"}]}'},
        instance=assistant,
    )
    assert not bad.is_valid()
    assert "values" in str(bad.errors["analysis_plan"])
    good = Form(data={**data, "analysis_plan": json.dumps(PLAN)}, instance=assistant)
    assert good.is_valid(), good.errors
    assert good.cleaned_data["analysis_plan"] == PLAN
