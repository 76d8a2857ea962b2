"""Text no database or encoder can keep is refused at parse time, with a 400 naming the field.

Unpaired UTF-16 surrogates (`"\\ud800"`: valid JSON, not valid Unicode) used to be stored and
then break every read of the organization's assistants; a NUL is refused by PostgreSQL (a 500
there). These tests run on SQLite and again on PostgreSQL (scripts/test-services.sh), where a
NUL reaching a query would be a 500.
"""

from __future__ import annotations

import pytest

from assistants.models import Assistant, KnowledgeEntry
from calls.models import Call

SURROGATE = "\ud800"
NUL = "\x00"
BASE = {"name": "Support", "system_prompt": "You are a helpful agent."}
ORIGIN = "https://app.example.com"


def assert_refused(response, field: str | None):
    """A 400 in the envelope, naming `field`, whose body is valid UTF-8 without the bad text."""
    assert response.status_code == 400, response.content
    text = response.content.decode("utf-8")  # would fail if a lone surrogate had been echoed
    assert "\\ud800" not in text and "\\u0000" not in text
    body = response.json()
    assert body["status"] is False
    if field is not None:
        assert field in body["errors"], body
        assert field in body["message"], body


@pytest.mark.django_db
class TestAssistantBodies:
    @pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])
    @pytest.mark.parametrize(
        "make_body, field",
        [
            (lambda bad: {**BASE, "voice_settings": {"v": bad}}, "voice_settings.v"),
            (
                lambda bad: {**BASE, "dtmf_rules": {"1": {"say": ["ok", bad]}}},
                "dtmf_rules.1.say[1]",
            ),
            (lambda bad: {**BASE, "name": f"Sup{bad}port"}, "name"),
            (
                lambda bad: {**BASE, "knowledge": [{"question": "q", "answer": bad}]},
                "knowledge[0].answer",
            ),
            (
                lambda bad: {
                    **BASE,
                    "speech": {"tts": {"provider": "espeak", "options": {"v": bad}}},
                },
                "speech.tts.options.v",
            ),
        ],
        ids=["voice_settings", "dtmf_rules", "name", "knowledge", "speech"],
    )
    def test_create_refuses_unstorable_text_naming_the_path_and_stores_nothing(
        self, api, make_body, field, bad
    ):
        assert_refused(api.post("/v1/assistants", make_body(bad)), field)

        assert Assistant.objects.count() == 0 and KnowledgeEntry.objects.count() == 0
        listed = api.get("/v1/assistants")
        assert listed.status_code == 200 and listed.json()["data"] == []

    @pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])
    def test_unknown_field_named_with_unstorable_text_is_a_400_that_does_not_echo_it(
        self, api, bad
    ):
        response = api.post("/v1/assistants", {**BASE, f"x{bad}": 1})
        assert_refused(response, None)
        assert "key" in response.json()["message"].lower()
        assert Assistant.objects.count() == 0

    @pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])
    def test_key_inside_a_settings_object_names_that_object(self, api, bad):
        assert_refused(
            api.post("/v1/assistants", {**BASE, "voice_settings": {bad: 1}}), "voice_settings"
        )
        assert Assistant.objects.count() == 0

    def test_patch_refuses_a_surrogate_and_the_assistant_keeps_reading(self, api, assistant):
        response = api.patch(f"/v1/assistants/{assistant.id}", {"voice_settings": {"v": SURROGATE}})

        assert_refused(response, "voice_settings.v")
        assistant.refresh_from_db()
        assert assistant.voice_settings == {}
        assert api.get(f"/v1/assistants/{assistant.id}").status_code == 200
        assert api.get("/v1/assistants").status_code == 200

    def test_a_surrogate_pair_written_as_escapes_is_one_character_and_is_kept(self, api):
        # "\ud83d\ude00" in JSON is U+1F600: paired, valid, and must survive the round trip.
        response = api.post("/v1/assistants", {**BASE, "voice_settings": {"v": "\U0001f600"}})
        assert response.status_code == 201, response.content
        assert response.json()["data"]["voice_settings"] == {"v": "\U0001f600"}

        raw = '{"name": "Emoji", "system_prompt": "p", "voice_settings": {"v": "\\ud83d\\ude00"}}'
        response = api.client.post(
            "/v1/assistants", raw, content_type="application/json", headers=api.headers(None)
        )
        assert response.status_code == 201, response.content
        assistant = Assistant.objects.get(pk=response.json()["data"]["id"])
        assert assistant.voice_settings == {"v": "\U0001f600"}


@pytest.mark.django_db
class TestWidgetAndCallBodies:
    @pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])
    def test_widget_patch_refuses_unstorable_text_and_changes_nothing(self, api, widget, bad):
        before = widget.call_to_action
        response = api.patch(f"/v1/widgets/{widget.id}", {"call_to_action": f"Hi{bad}"})

        assert_refused(response, "call_to_action")
        widget.refresh_from_db()
        assert widget.call_to_action == before
        assert api.get("/v1/widgets").status_code == 200

    @pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])
    def test_widget_origin_with_unstorable_text_is_refused(self, api, widget, bad):
        response = api.patch(f"/v1/widgets/{widget.id}", {"allowed_origins": [f"https://a{bad}.b"]})
        assert_refused(response, "allowed_origins[0]")
        assert widget.allowed_origin_list == [ORIGIN]

    @pytest.mark.parametrize("bad", [SURROGATE, NUL], ids=["surrogate", "nul"])
    @pytest.mark.parametrize(
        "make_body, field",
        [
            (lambda w, bad: {"widget_id": w.id, "variables": {"name": bad}}, "variables.name"),
            (lambda w, bad: {"widget_id": f"{w.id[:23]}{bad}"}, "widget_id"),
            (
                lambda w, bad: {
                    "widget_id": w.id,
                    "consent": {"accepted": True, "terms_sha256": bad},
                },
                "consent.terms_sha256",
            ),
        ],
        ids=["variables", "widget_id", "consent"],
    )
    def test_browser_create_call_refuses_unstorable_text_without_a_key(
        self, anon, widget, make_body, field, bad
    ):
        response = anon.post(
            "/v1/widgets/create-call", make_body(widget, bad), headers={"Origin": ORIGIN}
        )
        assert_refused(response, field)
        assert Call.objects.count() == 0

    def test_initiate_refuses_a_nul_in_the_assistant_id(self, api, assistant):
        response = api.post("/v1/calls/initiate", {"assistantId": NUL * 24, "type": "web"})
        assert_refused(response, "assistantId")
        assert Call.objects.count() == 0


@pytest.mark.django_db
class TestPathsAndQueries:
    @pytest.mark.parametrize(
        "path",
        [
            "/v1/widgets/%00/public",
            "/v1/widgets/665e4a34c65bb95f2f2d72e%00/public",
            "/v1/widgets/%00",
            "/v1/assistants/%00",
            "/v1/calls/%00",
            "/v1/calls/%00/transcripts",
        ],
    )
    def test_nul_in_a_path_id_is_a_json_404_without_a_query(
        self, api, widget, path, django_assert_num_queries
    ):
        with django_assert_num_queries(0):
            response = api.get(path)
        assert response.status_code == 404
        assert response.json() == {"status": False, "message": "Not found."}

    def test_public_config_with_nul_is_404_without_a_key_too(self, anon, widget):
        assert anon.get("/v1/widgets/%00/public").status_code == 404
        assert anon.get(f"/v1/widgets/{widget.id}/public").status_code == 200

    @pytest.mark.parametrize(
        "path, params, name",
        [
            ("/v1/calls", {"status": NUL}, "status"),
            ("/v1/calls", {"assistant": NUL * 24}, "assistant"),
            ("/v1/calls", {"created_after": f"2026-01-01{NUL}"}, "created_after"),
            ("/v1/assistants", {"enabled": NUL}, "enabled"),
            ("/v1/widgets", {"limit": NUL}, "limit"),
        ],
    )
    def test_nul_in_a_query_parameter_is_a_400_naming_it(self, api, widget, path, params, name):
        response = api.get(path, params)
        assert response.status_code == 400, response.content
        assert name in response.json()["errors"]
        assert api.get(path).status_code == 200

    def test_nul_in_a_query_parameter_name_is_a_400(self, api, db):
        response = api.get("/v1/calls", {f"st{NUL}atus": "1"})
        assert response.status_code == 400
        assert response.json()["status"] is False

    def test_nul_in_the_origin_header_matches_no_widget(self, anon, widget):
        response = anon.post(
            "/v1/widgets/create-call",
            {"widget_id": widget.id},
            headers={"Origin": f"{ORIGIN}{NUL}"},
        )
        assert response.status_code == 403
        public = anon.get(f"/v1/widgets/{widget.id}/public", headers={"Origin": f"{ORIGIN}{NUL}"})
        assert public.status_code == 200 and public.json()["origin_allowed"] is False
        assert Call.objects.count() == 0
