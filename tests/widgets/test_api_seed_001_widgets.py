"""Seed 001 (Widgets) replayed request by request against the API."""

from __future__ import annotations

import datetime as dt
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import override_settings
from django.utils import timezone

from calls.models import Call
from widgets.models import DEFAULTS, Widget

GATEWAY_PATH = "/new-web-call/connection"


def seed_patch_body(assistant_id: str) -> dict:
    """Seed 001's PATCH body verbatim, with a real assistant id of the same organization."""
    return {
        "assistantId": assistant_id,
        "background_color": "#FFFFFF",
        "text_color": "#111827",
        "button_color": "#0EA5E9",
        "button_text_color": "#FFFFFF",
        "border_color": "#E5E7EB",
        "focus_outline_color": "#38BDF8",
        "card_radius": 12,
        "button_radius": 8,
        "start_call_button": "Start call",
        "end_call_button": "End call",
        "call_to_action": "Talk to Sales",
        "terms_and_condition": True,
        "terms_and_condition_content": "By continuing, you agree to recording terms.",
        "allowed_origins": ["https://app.example.com"],
    }


WIDGET_KEYS = {
    "id",
    "assistantId",
    "background_color",
    "text_color",
    "button_color",
    "button_text_color",
    "border_color",
    "focus_outline_color",
    "card_radius",
    "button_radius",
    "start_call_button",
    "end_call_button",
    "call_to_action",
    "terms_and_condition",
    "terms_and_condition_content",
    "placement",
    "position",
    "allowed_origins",
    "created_at",
    "updated_at",
    "embed_code",
}


@pytest.mark.django_db
class TestSeed001:
    def test_post_widgets_without_body_creates_widget_with_defaults(self, api, organization):
        response = api.post("/v1/widgets")

        assert response.status_code == 201
        body = response.json()
        assert body["status"] is True
        assert body["message"] == "Widget created"
        data = body["data"]
        assert set(data) == WIDGET_KEYS
        for name, value in DEFAULTS.items():
            assert data[name] == value, name
        assert data["assistantId"] is None
        assert data["allowed_origins"] == []
        assert f'data-widget-id="{data["id"]}"' in data["embed_code"]
        assert data["embed_code"].startswith('<script src="http://testserver/static/widget/')
        widget = Widget.objects.get(pk=data["id"])
        assert widget.organization == organization

    def test_patch_with_seed_body_updates_every_field(self, api, assistant):
        widget_id = api.post("/v1/widgets").json()["data"]["id"]
        body = seed_patch_body(assistant.id)

        response = api.patch(f"/v1/widgets/{widget_id}", body)

        assert response.status_code == 200
        payload = response.json()
        assert payload["status"] is True
        assert payload["message"] == "Widget updated"
        data = payload["data"]
        for name, value in body.items():
            assert data[name] == value, name
        widget = Widget.objects.get(pk=widget_id)
        assert widget.assistant_id == assistant.id
        assert widget.call_to_action == "Talk to Sales"
        assert widget.terms_and_condition is True
        assert widget.allowed_origin_list == ["https://app.example.com"]

    def test_get_widget_list_contains_the_patched_widget(self, api, assistant):
        widget_id = api.post("/v1/widgets").json()["data"]["id"]
        api.patch(f"/v1/widgets/{widget_id}", seed_patch_body(assistant.id))

        response = api.get("/v1/widgets")

        assert response.status_code == 200
        body = response.json()
        assert body["message"] == "Widgets fetched"
        assert body["meta"] == {"total": 1, "limit": 50, "offset": 0}
        [item] = body["data"]
        assert item["id"] == widget_id
        assert item["assistantId"] == assistant.id
        assert item["allowed_origins"] == ["https://app.example.com"]

    def test_get_one_widget(self, api, assistant):
        widget_id = api.post("/v1/widgets").json()["data"]["id"]
        api.patch(f"/v1/widgets/{widget_id}", seed_patch_body(assistant.id))

        response = api.get(f"/v1/widgets/{widget_id}")

        assert response.status_code == 200
        body = response.json()
        assert body["message"] == "Widget fetched"
        assert set(body["data"]) == WIDGET_KEYS
        assert body["data"]["call_to_action"] == "Talk to Sales"

    def test_delete_widget_then_it_is_gone(self, api):
        widget_id = api.post("/v1/widgets").json()["data"]["id"]

        response = api.delete(f"/v1/widgets/{widget_id}")

        assert response.status_code == 200
        assert response.json() == {"status": True, "message": "Widget deleted", "data": None}
        assert not Widget.objects.filter(pk=widget_id).exists()
        assert api.get(f"/v1/widgets/{widget_id}").status_code == 404

    def test_create_call_with_key_answers_snake_case_ids_and_gateway(self, api, assistant):
        widget_id = api.post("/v1/widgets").json()["data"]["id"]
        api.patch(f"/v1/widgets/{widget_id}", seed_patch_body(assistant.id))
        before = timezone.now()

        response = api.post("/v1/widgets/create-call", {"widget_id": widget_id})
        after = timezone.now()

        assert response.status_code == 201
        body = response.json()
        assert set(body) == {"status", "message", "call_id", "assistant_id", "gateway"}
        assert body["status"] is True
        assert body["message"] == "Call created"
        assert body["assistant_id"] == assistant.id
        gateway = body["gateway"]
        assert gateway["transport"] == "websocket"
        assert gateway["path"] == GATEWAY_PATH
        assert gateway["url"].startswith(
            f"ws://testserver{GATEWAY_PATH}?assistant_id={assistant.id}&call_id={body['call_id']}"
        )
        token = parse_qs(urlsplit(gateway["url"]).query)["token"][0]

        call = Call.objects.get(pk=body["call_id"])
        assert call.status == "queued"
        assert call.widget_id == widget_id
        assert call.assistant_id == assistant.id
        assert call.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert token not in call.token_hash
        assert before + dt.timedelta(seconds=5) <= call.token_expires_at
        assert call.token_expires_at <= after + dt.timedelta(seconds=60)

    def test_create_call_gateway_is_wss_for_secure_request(self, api, widget):
        response = api.post("/v1/widgets/create-call", {"widget_id": widget.id}, secure=True)
        assert response.status_code == 201
        assert response.json()["gateway"]["url"].startswith(f"wss://testserver{GATEWAY_PATH}?")

    @override_settings(
        USE_X_FORWARDED_HOST=True,
        SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https"),
        ALLOWED_HOSTS=["testserver", "widgets.example.com"],
    )
    def test_create_call_gateway_honours_forwarded_headers_when_trusted(self, api, widget):
        response = api.post(
            "/v1/widgets/create-call",
            {"widget_id": widget.id},
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "widgets.example.com"},
        )
        assert response.json()["gateway"]["url"].startswith(
            f"wss://widgets.example.com{GATEWAY_PATH}?"
        )

    @override_settings(
        USE_X_FORWARDED_HOST=False,
        SECURE_PROXY_SSL_HEADER=None,
        ALLOWED_HOSTS=["testserver", "widgets.example.com"],
    )
    def test_create_call_gateway_ignores_forwarded_headers_when_untrusted(self, api, widget):
        response = api.post(
            "/v1/widgets/create-call",
            {"widget_id": widget.id},
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "widgets.example.com"},
        )
        assert response.json()["gateway"]["url"].startswith(f"ws://testserver{GATEWAY_PATH}?")

    def test_create_call_with_bearer_key(self, make_api, widget):
        response = make_api(bearer=True).post("/v1/widgets/create-call", {"widget_id": widget.id})
        assert response.status_code == 201

    @pytest.mark.parametrize(
        "method, path, body, scope",
        [
            ("post", "/v1/widgets", None, "widgets:write"),
            ("patch", "/v1/widgets/{id}", {"call_to_action": "Hi"}, "widgets:write"),
            ("get", "/v1/widgets", None, "widgets:read"),
            ("get", "/v1/widgets/{id}", None, "widgets:read"),
            ("delete", "/v1/widgets/{id}", None, "widgets:write"),
            ("post", "/v1/widgets/create-call", {"widget_id": "{id}"}, "widgets:write"),
        ],
    )
    def test_seed_requests_without_scope_are_403(self, make_api, widget, method, path, body, scope):
        from accounts.models import ALL_SCOPES

        client = make_api(scopes=[s for s in ALL_SCOPES if s != scope])
        if body and body.get("widget_id"):
            body = {"widget_id": widget.id}
        response = client.request(method, path.format(id=widget.id), body)
        assert response.status_code == 403
        assert scope in response.json()["message"]
        assert Widget.objects.count() == 1
        assert Call.objects.count() == 0

    @pytest.mark.parametrize(
        "method, path, body",
        [
            ("patch", "/v1/widgets/665e4a34c65bb95f2f2d72e1", {"call_to_action": "Hi"}),
            ("get", "/v1/widgets/665e4a34c65bb95f2f2d72e1", None),
            ("delete", "/v1/widgets/665e4a34c65bb95f2f2d72e1", None),
            ("post", "/v1/widgets/create-call", {"widget_id": "665e4a34c65bb95f2f2d72e1"}),
        ],
    )
    def test_unknown_widget_is_404(self, api, method, path, body):
        response = api.request(method, path, body)
        assert response.status_code == 404
        assert response.json()["status"] is False

    def test_create_call_with_invalid_payload_is_400_naming_field(self, api):
        response = api.post("/v1/widgets/create-call", {"widget_id": 5})
        assert response.status_code == 400
        assert "widget_id" in response.json()["message"]
        assert "widget_id" in response.json()["errors"]
        response = api.post("/v1/widgets/create-call", {})
        assert response.status_code == 400
        assert "widget_id" in response.json()["errors"]
