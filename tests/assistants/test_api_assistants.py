"""The assistants API: create with knowledge, list filters, partial update, speech
providers and masked credentials, delete guarded by live calls."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from assistants.models import Assistant, KnowledgeEntry
from assistants.serializers import MASK
from voice.providers.openai_http import parse_endpoints

CREATE_BODY = {
    "name": "Support",
    "system_prompt": "You are a helpful agent.",
    "starting_message": "Hi {{name}}!",
    "knowledge": [
        {"question": "When are you open?", "answer": "Nine to five."},
        {"question": "Where are you?", "answer": "Harbour Street."},
    ],
    "speech": {"tts": {"provider": "espeak", "options": {}}},
}


@pytest.mark.django_db
class TestCreate:
    def test_create_with_knowledge_entries(self, api, organization):
        response = api.post("/v1/assistants", CREATE_BODY)

        assert response.status_code == 201, response.content
        body = response.json()
        assert body["status"] is True
        assert body["message"] == "Assistant created"
        data = body["data"]
        assert data["name"] == "Support"
        assert data["starting_message"] == "Hi {{name}}!"
        assert data["enabled"] is True
        assert data["knowledge"] == [{**e, "alternatives": []} for e in CREATE_BODY["knowledge"]]
        assert data["speech"]["tts"] == {"provider": "espeak", "options": {}}
        assert data["speech"]["stt"]["provider"] == "faster-whisper"
        assistant = Assistant.objects.get(pk=data["id"])
        assert assistant.organization == organization
        entries = list(assistant.knowledge.values_list("question", "answer", "position"))
        assert entries == [
            ("When are you open?", "Nine to five.", 0),
            ("Where are you?", "Harbour Street.", 1),
        ]

    @pytest.mark.parametrize(
        "body, field",
        [
            ({"system_prompt": "p"}, "name"),
            ({"name": "n"}, "system_prompt"),
            ({**CREATE_BODY, "unknown": 1}, "unknown"),
            ({**CREATE_BODY, "knowledge": [{"question": "q"}]}, "knowledge"),
            ({**CREATE_BODY, "knowledge": [{"question": "q", "answer": "a", "x": 1}]}, "knowledge"),
            ({**CREATE_BODY, "knowledge": "q"}, "knowledge"),
            ({**CREATE_BODY, "language": "english!"}, "language"),
            ({**CREATE_BODY, "endpoint_silence_ms": 5}, "endpoint_silence_ms"),
            ({**CREATE_BODY, "max_call_seconds": 10**9}, "max_call_seconds"),
            ({**CREATE_BODY, "voice_settings": "loud"}, "voice_settings"),
            ({**CREATE_BODY, "speech": {"tts": {"provider": "nope"}}}, "speech"),
            ({**CREATE_BODY, "speech": {"ears": {"provider": "silero"}}}, "speech"),
            ({**CREATE_BODY, "speech": {"vad": {"provider": "piper"}}}, "speech"),
            ({**CREATE_BODY, "speech": {"stt": "openai"}}, "speech"),
            ({**CREATE_BODY, "speech": {"stt": {"provider": "openai", "opts": {}}}}, "speech"),
            ({**CREATE_BODY, "speech": {"tts": {"provider": "piper", "options": []}}}, "speech"),
            ({**CREATE_BODY, "speech": ["tts"]}, "speech"),
        ],
    )
    def test_create_rejects_invalid_payload_naming_field(self, api, db, body, field):
        response = api.post("/v1/assistants", body)

        assert response.status_code == 400, response.content
        payload = response.json()
        assert field in payload["message"]
        assert field in payload["errors"]
        assert Assistant.objects.count() == 0
        assert KnowledgeEntry.objects.count() == 0


@pytest.mark.django_db
class TestList:
    @pytest.fixture
    def assistants(self, make_assistant):
        made = [make_assistant(name=f"A{i}", enabled=i % 2 == 0) for i in range(5)]
        return made

    def test_list_returns_all_with_meta(self, api, assistants):
        body = api.get("/v1/assistants").json()
        assert body["message"] == "Assistants fetched"
        assert body["meta"] == {"total": 5, "limit": 50, "offset": 0}
        assert {a["id"] for a in body["data"]} == {a.id for a in assistants}

    @pytest.mark.parametrize("value, expected", [("true", True), ("false", False)])
    def test_list_filters_enabled(self, api, assistants, value, expected):
        body = api.get("/v1/assistants", {"enabled": value}).json()
        ids = {a.id for a in assistants if a.enabled is expected}
        assert {a["id"] for a in body["data"]} == ids
        assert all(a["enabled"] is expected for a in body["data"])
        assert body["meta"]["total"] == len(ids)

    def test_list_paginates_with_limit_and_offset(self, api, assistants):
        newest_first = [a.id for a in sorted(assistants, key=lambda a: a.created_at, reverse=True)]
        first = api.get("/v1/assistants", {"limit": 2}).json()
        second = api.get("/v1/assistants", {"limit": 2, "offset": 2}).json()
        last = api.get("/v1/assistants", {"limit": 2, "offset": 4}).json()
        assert first["meta"] == {"total": 5, "limit": 2, "offset": 0}
        assert second["meta"] == {"total": 5, "limit": 2, "offset": 2}
        pages = [a["id"] for page in (first, second, last) for a in page["data"]]
        assert pages == newest_first

    def test_limit_100_is_allowed(self, api, assistants):
        assert api.get("/v1/assistants", {"limit": 100}).status_code == 200

    @pytest.mark.parametrize(
        "params, field",
        [
            ({"limit": 101}, "limit"),
            ({"limit": 0}, "limit"),
            ({"limit": "ten"}, "limit"),
            ({"offset": -1}, "offset"),
            ({"enabled": "maybe"}, "enabled"),
            ({"colour": "blue"}, "colour"),
        ],
    )
    def test_bad_list_parameters_are_400_naming_them(self, api, assistants, params, field):
        response = api.get("/v1/assistants", params)
        assert response.status_code == 400
        assert field in response.json()["message"]
        assert field in response.json()["errors"]


@pytest.mark.django_db
class TestUpdate:
    def test_partial_update_changes_only_sent_fields(self, api, make_assistant):
        assistant = make_assistant(description="Desc", knowledge=[{"question": "Q", "answer": "A"}])

        response = api.patch(f"/v1/assistants/{assistant.id}", {"enabled": False})

        assert response.status_code == 200
        data = response.json()["data"]
        assert data["enabled"] is False
        assert data["description"] == "Desc"
        assert data["knowledge"] == [{"question": "Q", "answer": "A", "alternatives": []}]
        assistant.refresh_from_db()
        assert assistant.enabled is False
        assert assistant.name == "Support"

    def test_sending_knowledge_replaces_it_whole(self, api, make_assistant):
        assistant = make_assistant(knowledge=[{"question": "Q1", "answer": "A1"}])
        new = [{"question": "Q2", "answer": "A2"}, {"question": "Q3", "answer": "A3"}]
        response = api.patch(f"/v1/assistants/{assistant.id}", {"knowledge": new})
        assert response.json()["data"]["knowledge"] == [{**e, "alternatives": []} for e in new]
        assert list(assistant.knowledge.values_list("question", flat=True)) == ["Q2", "Q3"]

    def test_speech_patch_merges_over_current_stages(self, api, make_assistant, settings):
        settings.VOICE_ENDPOINTS = parse_endpoints(
            '{"main": {"base_url": "https://a.example"}}', {}
        )
        assistant = make_assistant(speech={"tts": {"provider": "espeak", "options": {}}})
        response = api.patch(
            f"/v1/assistants/{assistant.id}", {"speech": {"stt": {"provider": "openai"}}}
        )
        assert response.status_code == 200
        speech = response.json()["data"]["speech"]
        assert speech["stt"]["provider"] == "openai"
        assert speech["tts"]["provider"] == "espeak"

    def test_unknown_speech_provider_is_400_naming_speech_and_saves_nothing(
        self, api, make_assistant
    ):
        assistant = make_assistant()
        before = Assistant.objects.filter(pk=assistant.pk).values().get()
        response = api.patch(
            f"/v1/assistants/{assistant.id}",
            {"name": "Changed", "speech": {"tts": {"provider": "festival"}}},
        )
        assert response.status_code == 400
        assert "speech" in response.json()["message"]
        assert "speech" in response.json()["errors"]
        assert Assistant.objects.filter(pk=assistant.pk).values().get() == before


@pytest.mark.django_db
class TestCredentials:
    """Credentials are the operator's (VOICE_ENDPOINTS): tenants cannot send one, and one
    stored before that rule is still never shown."""

    SECRET = "sk-live-0123456789abcdef"

    def test_a_credential_sent_by_a_tenant_is_refused_naming_the_option(self, api, settings):
        settings.VOICE_ENDPOINTS = parse_endpoints(
            '{"main": {"base_url": "https://a.example"}}', {}
        )
        body = {
            **CREATE_BODY,
            "speech": {"stt": {"provider": "openai", "options": {"api_key": self.SECRET}}},
        }
        response = api.post("/v1/assistants", body)
        assert response.status_code == 400
        assert "speech.stt.options.api_key" in response.json()["message"]
        assert self.SECRET not in response.content.decode()
        assert Assistant.objects.count() == 0

    def test_a_stored_legacy_credential_is_masked_in_every_response(self, api, make_assistant):
        assistant = make_assistant(
            speech={
                "stt": {"provider": "openai", "options": {"api_key": self.SECRET, "model": "m1"}},
                "brain": {"provider": "openai", "options": {"Access_Token": "tok-123"}},
            }
        )
        responses = [
            api.get(f"/v1/assistants/{assistant.id}"),
            api.get("/v1/assistants"),
            api.patch(f"/v1/assistants/{assistant.id}", {"name": "Renamed"}),
        ]
        for response in responses:
            assert response.status_code == 200
            assert self.SECRET not in response.content.decode()
            assert "tok-123" not in response.content.decode()
        speech = responses[0].json()["data"]["speech"]
        assert speech["stt"]["options"] == {"api_key": MASK, "model": "m1"}
        assert speech["brain"]["options"] == {"Access_Token": MASK}


@pytest.mark.django_db
class TestDelete:
    @pytest.mark.parametrize(
        "fields",
        [
            {"status": "in_progress"},
            {"status": "queued", "token_expires_at_delta": 30},
        ],
        ids=["in-progress", "queued-with-live-token"],
    )
    def test_delete_with_live_call_is_409_and_deletes_nothing(
        self, api, assistant, make_call, fields
    ):
        fields = dict(fields)
        delta = fields.pop("token_expires_at_delta", None)
        if delta is not None:
            fields["token_expires_at"] = timezone.now() + dt.timedelta(seconds=delta)
        call = make_call(assistant=assistant, **fields)

        response = api.delete(f"/v1/assistants/{assistant.id}")

        assert response.status_code == 409
        body = response.json()
        assert body["status"] is False
        assert "live call" in body["message"]
        assert Assistant.objects.filter(pk=assistant.pk).exists()
        call.refresh_from_db()
        assert call.assistant_id == assistant.id

    @pytest.mark.parametrize(
        "fields",
        [
            {"status": "completed"},
            {"status": "failed"},
            {"status": "queued", "token_expires_at_delta": -1},
            {"status": "queued"},
        ],
        ids=["completed", "failed", "queued-expired-token", "queued-no-token"],
    )
    def test_delete_without_live_call_is_200(self, api, assistant, make_call, fields):
        fields = dict(fields)
        delta = fields.pop("token_expires_at_delta", None)
        if delta is not None:
            fields["token_expires_at"] = timezone.now() + dt.timedelta(seconds=delta)
        call = make_call(assistant=assistant, **fields)

        response = api.delete(f"/v1/assistants/{assistant.id}")

        assert response.status_code == 200
        assert response.json() == {"status": True, "message": "Assistant deleted", "data": None}
        assert not Assistant.objects.filter(pk=assistant.pk).exists()
        assert KnowledgeEntry.objects.filter(assistant_id=assistant.pk).count() == 0
        call.refresh_from_db()
        assert call.assistant_id is None  # the call history is kept

    def test_live_call_of_another_assistant_does_not_block_delete(
        self, api, assistant, make_assistant, make_call
    ):
        make_call(assistant=make_assistant(name="Other"), status="in_progress")
        assert api.delete(f"/v1/assistants/{assistant.id}").status_code == 200


def test_admin_form_validates_speech_and_free_form_fields_as_the_api_does(assistant):
    from django.forms import modelform_factory

    from assistants.admin import AssistantAdminForm

    Form = modelform_factory(
        type(assistant),
        form=AssistantAdminForm,
        fields=["name", "system_prompt", "speech", "voice_settings", "dtmf_rules"],
    )
    data = {
        "name": "Support",
        "system_prompt": "Help.",
        "speech": '{"tts": {"provider": "piper", "options": {"model_path": "x.onnx"}}}',
        "voice_settings": '{"k": "' + "x" * 20000 + '"}',
        "dtmf_rules": "{}",
    }
    form = Form(data=data, instance=assistant)
    assert not form.is_valid()
    assert "model_path" in str(form.errors["speech"])
    assert "voice_settings" in form.errors
    good = Form(
        data={**data, "speech": '{"tts": {"provider": "espeak"}}', "voice_settings": "{}"},
        instance=assistant,
    )
    assert good.is_valid(), good.errors
    assert set(good.cleaned_data["speech"]) == {"vad", "stt", "brain", "tts"}
    assert good.cleaned_data["speech"]["tts"]["provider"] == "espeak"


def test_goodbye_message_defaults_to_the_engines_line_and_may_be_blank(api):
    from voice.config import DEFAULT_GOODBYE_MESSAGE

    body = {"name": "Shop", "system_prompt": "Help."}
    created = api.post("/v1/assistants", body).json()["data"]
    assert created["goodbye_message"] == DEFAULT_GOODBYE_MESSAGE
    url = f"/v1/assistants/{created['id']}"
    assert api.patch(url, {"goodbye_message": ""}).json()["data"]["goodbye_message"] == ""
    too_long = api.patch(url, {"goodbye_message": "x" * 501})
    assert too_long.status_code == 400 and "goodbye_message" in too_long.json()["errors"]
