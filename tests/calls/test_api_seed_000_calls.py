"""Seed 000 (Calls) replayed request by request against the API."""

from __future__ import annotations

import datetime as dt
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from calls.models import Call

GATEWAY_PATH = "/new-web-call/connection"
PROXY_TRUSTED = {
    "USE_X_FORWARDED_HOST": True,
    "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
    "ALLOWED_HOSTS": ["testserver", "api.example.com"],
}
PROXY_UNTRUSTED = {
    "USE_X_FORWARDED_HOST": False,
    "SECURE_PROXY_SSL_HEADER": None,
    "ALLOWED_HOSTS": ["testserver", "api.example.com"],
}
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example.com"}


def initiate(api, assistant, **kwargs):
    return api.post("/v1/calls/initiate", {"assistantId": assistant.id, "type": "web"}, **kwargs)


def gateway_query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def assert_gateway(gateway: dict, *, scheme: str, host: str, assistant_id: str, call_id: str):
    assert set(gateway) == {"transport", "path", "url"}
    assert gateway["transport"] == "websocket"
    assert gateway["path"] == GATEWAY_PATH
    prefix = f"{scheme}://{host}{GATEWAY_PATH}?assistant_id={assistant_id}&call_id={call_id}"
    assert gateway["url"].startswith(prefix), gateway["url"]
    query = gateway_query(gateway["url"])
    assert query["assistant_id"] == [assistant_id]
    assert query["call_id"] == [call_id]
    assert len(query["token"]) == 1 and len(query["token"][0]) >= 20


@pytest.mark.django_db
class TestInitiate:
    def test_initiate_web_call_answers_seed_envelope_with_camelcase_call_id(self, api, assistant):
        response = initiate(api, assistant)

        assert response.status_code == 201
        body = response.json()
        assert set(body) == {"status", "message", "callId", "gateway"}
        assert body["status"] is True
        assert body["message"] == "Call initiated with location data"
        assert len(body["callId"]) == 24 and int(body["callId"], 16) >= 0
        assert_gateway(
            body["gateway"],
            scheme="ws",
            host="testserver",
            assistant_id=assistant.id,
            call_id=body["callId"],
        )

    def test_initiate_accepts_bearer_authorization(self, make_api, assistant):
        response = initiate(make_api(bearer=True), assistant)
        assert response.status_code == 201
        assert response.json()["message"] == "Call initiated with location data"

    def test_initiate_stores_a_queued_call_with_only_the_token_hash(self, api, assistant):
        before = timezone.now()
        body = initiate(api, assistant).json()

        call = Call.objects.get(pk=body["callId"])
        token = gateway_query(body["gateway"]["url"])["token"][0]
        assert call.status == "queued"
        assert call.type == "web"
        assert call.assistant_id == assistant.id
        assert call.organization_id == assistant.organization_id
        assert call.widget_id is None
        assert call.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert call.token_expires_at is not None
        assert before < call.token_expires_at <= timezone.now() + dt.timedelta(seconds=60)
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM calls_call WHERE id = %s", [call.id])
            row = cursor.fetchone()
        assert not any(isinstance(v, str) and token in v for v in row)

    def test_each_initiate_gets_a_distinct_single_use_token(self, api, assistant):
        first = initiate(api, assistant).json()
        second = initiate(api, assistant).json()
        assert first["callId"] != second["callId"]
        tokens = {gateway_query(b["gateway"]["url"])["token"][0] for b in (first, second)}
        assert len(tokens) == 2

    def test_gateway_url_is_wss_when_the_request_is_secure(self, api, assistant):
        body = initiate(api, assistant, secure=True).json()
        assert_gateway(
            body["gateway"],
            scheme="wss",
            host="testserver",
            assistant_id=assistant.id,
            call_id=body["callId"],
        )

    @override_settings(**PROXY_TRUSTED)
    def test_gateway_url_follows_forwarded_proto_and_host_when_proxy_trusted(self, api, assistant):
        body = initiate(api, assistant, headers=FORWARDED).json()
        assert body["gateway"]["url"].startswith(f"wss://api.example.com{GATEWAY_PATH}?")

    @override_settings(**PROXY_UNTRUSTED)
    def test_gateway_url_ignores_forwarded_headers_when_proxy_not_trusted(self, api, assistant):
        body = initiate(api, assistant, headers=FORWARDED).json()
        assert body["gateway"]["url"].startswith(f"ws://testserver{GATEWAY_PATH}?")

    @pytest.mark.parametrize(
        "body, field",
        [
            ({"type": "web"}, "assistantId"),
            ({"assistantId": "665e4a34c65bb95f2f2d72e2"}, "type"),
            ({"assistantId": 12, "type": "web"}, "assistantId"),
            ({"assistantId": "x", "type": "phone"}, "type"),
            ({"assistantId": "x", "type": "web", "extra": 1}, "extra"),
            ({"assistantId": "x", "type": "web", "variables": "name"}, "variables"),
        ],
    )
    def test_initiate_rejects_invalid_payload_naming_the_field(self, api, assistant, body, field):
        if body.get("assistantId") == "x":
            body = {**body, "assistantId": assistant.id}
        response = api.post("/v1/calls/initiate", body)
        assert response.status_code == 400
        payload = response.json()
        assert payload["status"] is False
        assert field in payload["message"]
        assert field in payload["errors"]
        assert Call.objects.count() == 0

    def test_initiate_with_unknown_assistant_is_404(self, api, db):
        response = api.post(
            "/v1/calls/initiate", {"assistantId": "665e4a34c65bb95f2f2d72e2", "type": "web"}
        )
        assert response.status_code == 404
        assert response.json()["status"] is False
        assert Call.objects.count() == 0

    def test_initiate_with_disabled_assistant_is_400(self, api, make_assistant):
        disabled = make_assistant(enabled=False)
        response = initiate(api, disabled)
        assert response.status_code == 400
        assert "disabled" in response.json()["message"]
        assert Call.objects.count() == 0

    def test_initiate_without_calls_write_is_403(self, make_api, assistant):
        response = initiate(make_api(scopes=["calls:read"]), assistant)
        assert response.status_code == 403
        assert "calls:write" in response.json()["message"]


@pytest.mark.django_db
class TestReads:
    def test_list_calls_matches_seed_item_shape_with_numeric_status(self, api, assistant):
        call_id = initiate(api, assistant).json()["callId"]

        response = api.get("/v1/calls")

        assert response.status_code == 200
        body = response.json()
        assert body["status"] is True
        assert body["message"] == "Calls fetched"
        assert body["meta"] == {"total": 1, "limit": 50, "offset": 0}
        [item] = body["data"]
        assert {"id": item["id"], "type": item["type"], "status": item["status"]} == {
            "id": call_id,
            "type": "web",
            "status": 0,
        }
        assert type(item["status"]) is int
        assert item["status_label"] == "queued"

    @pytest.mark.parametrize(
        "status, code", [("queued", 0), ("in_progress", 1), ("completed", 2), ("failed", 3)]
    )
    def test_call_status_is_reported_as_seed_number(self, api, assistant, make_call, status, code):
        call = make_call(assistant=assistant, status=status)
        item = api.get(f"/v1/calls/{call.id}").json()["data"]
        assert item["status"] == code
        assert item["status_label"] == status

    def test_get_call_returns_the_call(self, api, assistant):
        call_id = initiate(api, assistant).json()["callId"]

        response = api.get(f"/v1/calls/{call_id}")

        assert response.status_code == 200
        body = response.json()
        assert body["status"] is True
        assert body["message"] == "Call fetched"
        data = body["data"]
        assert data["id"] == call_id
        assert data["type"] == "web"
        assert data["status"] == 0
        assert data["assistant_id"] == assistant.id
        assert data["widget_id"] is None
        assert "token" not in str(data)

    def test_get_transcripts_of_queued_call_is_pending_and_empty(self, api, assistant):
        call_id = initiate(api, assistant).json()["callId"]

        response = api.get(f"/v1/calls/{call_id}/transcripts")

        assert response.status_code == 200
        body = response.json()
        assert body["status"] is True
        assert body["message"] == "Transcripts fetched"
        assert body["data"] == {
            "call_id": call_id,
            "transcript_status": "pending",
            "transcripts": [],
        }

    def test_get_analysis_of_new_call_is_pending_with_null_summary(self, api, assistant):
        call_id = initiate(api, assistant).json()["callId"]

        response = api.get(f"/v1/calls/{call_id}/analysis")

        assert response.status_code == 200
        body = response.json()
        assert body["message"] == "Analysis fetched"
        assert body["data"]["call_id"] == call_id
        assert body["data"]["analysis_status"] == "pending"
        assert body["data"]["summary"] is None

    @pytest.mark.parametrize("suffix", ["", "/transcripts", "/analysis"])
    def test_unknown_call_is_404(self, api, db, suffix):
        response = api.get(f"/v1/calls/665e4a34c65bb95f2f2d72e1{suffix}")
        assert response.status_code == 404
        assert response.json() == {"status": False, "message": "Not found."}

    @pytest.mark.parametrize("suffix", ["", "/transcripts", "/analysis"])
    def test_reads_without_calls_read_are_403(self, make_api, make_call, suffix):
        call = make_call()
        response = make_api(scopes=["calls:write"]).get(f"/v1/calls/{call.id}{suffix}")
        assert response.status_code == 403
        assert "calls:read" in response.json()["message"]
