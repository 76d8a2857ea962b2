"""The webhooks API: endpoints, the secret shown once, URL and event validation, rotation,
the test ping, the delivery log and replay; the secret is never stored in clear nor logged."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tests.test_no_secrets_stored import assert_not_stored
from tests.webhooks.fixtures import *  # noqa: F403 (the fixtures: see that module)
from tests.webhooks.receiver import Answer, Receiver
from webhooks.catalog import EVENT_TYPES
from webhooks.delivery import deliver
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import endpoint_send_test

pytestmark = pytest.mark.django_db


def create(api, url="https://hooks.example.com/in", **fields):
    response = api.post("/v1/webhooks", {"url": url, **fields})
    assert response.status_code == 201, response.content
    return response.json()["data"]


# ------------------------------------------------------------------------------ endpoints


def test_create_shows_the_secret_once_and_reads_never_do(api):
    created = create(api, description="CRM", events=["call.ended"])

    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert created["url"] == "https://hooks.example.com/in"
    assert created["description"] == "CRM"
    assert created["events"] == ["call.ended"]
    assert created["enabled"] is True and created["disabled_reason"] is None
    webhook_id = created["id"]
    answers = [
        api.get(f"/v1/webhooks/{webhook_id}"),
        api.get("/v1/webhooks"),
        api.patch(f"/v1/webhooks/{webhook_id}", {"description": "CRM 2"}),
        api.get(f"/v1/webhooks/{webhook_id}/deliveries"),
    ]
    for response in answers:
        assert response.status_code == 200
        assert secret not in response.content.decode()
        assert secret.removeprefix("whsec_") not in response.content.decode()
    assert "secret" not in answers[0].json()["data"]
    assert answers[1].json()["meta"] == {"total": 1, "limit": 50, "offset": 0}


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/in",  # http needs WEBHOOK_ALLOW_HTTP
        "ftp://hooks.example.com/in",
        "https://127.0.0.1/in",  # private needs WEBHOOK_ALLOW_PRIVATE_NETWORKS
        "https://10.0.0.8/in",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/in",
        "https://user:pass@hooks.example.com/in",
        "https://2130706433/in",
        "hooks.example.com/in",
        "https://hooks example.com/in",
        "",
        "https://" + "a" * 2000 + ".com/",
    ],
)
def test_refused_urls_are_a_400_naming_url(api, settings, url):
    settings.WEBHOOK_ALLOW_HTTP = False
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    response = api.post("/v1/webhooks", {"url": url})

    assert response.status_code == 400, response.content
    body = response.json()
    assert list(body["errors"]) == ["url"]
    assert "url" in body["message"]
    assert WebhookEndpoint.objects.count() == 0


def test_metadata_address_is_refused_even_when_private_networks_are_allowed(api):
    response = api.post("/v1/webhooks", {"url": "http://169.254.169.254/"})
    assert response.status_code == 400
    assert "url" in response.json()["errors"]


def test_loopback_http_url_is_accepted_when_both_settings_allow_it(api):
    assert create(api, url="http://127.0.0.1:9/in")["url"] == "http://127.0.0.1:9/in"


@pytest.mark.parametrize("url", [None, 42, ["https://a.example.com"], {"u": 1}])
def test_url_of_the_wrong_json_type_is_a_400_naming_url(api, url):
    response = api.post("/v1/webhooks", {"url": url})
    assert response.status_code == 400
    assert "url" in response.json()["errors"]


def test_url_is_required_and_unknown_fields_are_refused(api):
    missing = api.post("/v1/webhooks", {"events": ["call.ended"]})
    assert missing.status_code == 400 and "url" in missing.json()["errors"]
    unknown = api.post("/v1/webhooks", {"url": "https://a.example.com", "secret": "whsec_x"})
    assert unknown.status_code == 400 and "secret" in unknown.json()["errors"]


@pytest.mark.parametrize(
    "events",
    [["call.exploded"], ["call.ended", "nope"], "call.ended", [1], [["call.ended"]], {"a": 1}],
)
def test_unknown_event_type_or_wrong_shape_is_a_400_naming_events(api, events):
    response = api.post("/v1/webhooks", {"url": "https://a.example.com", "events": events})
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["events"]


@pytest.mark.parametrize(
    "events, stored",
    [
        ([], ["*"]),
        (["*"], ["*"]),
        (["call.ended", "*"], ["*"]),
        (["call.ended", "call.created", "call.ended"], ["call.ended", "call.created"]),
        (list(EVENT_TYPES), list(EVENT_TYPES)),
    ],
)
def test_events_are_normalised(api, events, stored):
    assert create(api, events=events)["events"] == stored


def test_events_default_to_all(api):
    assert create(api)["events"] == ["*"]


def test_patch_updates_and_validates_fields(api):
    webhook = create(api)
    url = f"/v1/webhooks/{webhook['id']}"

    changed = api.patch(url, {"url": "https://other.example.com/x", "events": ["call.started"]})
    assert changed.status_code == 200
    assert changed.json()["data"]["url"] == "https://other.example.com/x"
    assert changed.json()["data"]["events"] == ["call.started"]

    assert api.patch(url, {"url": "https://10.0.0.1/"}).status_code == 200  # private allowed here
    bad = api.patch(url, {"url": "gopher://x"})
    assert bad.status_code == 400 and "url" in bad.json()["errors"]
    assert api.patch(url, {"enabled": "yes"}).status_code == 400
    assert WebhookEndpoint.objects.get(pk=webhook["id"]).url == "https://10.0.0.1/"


def test_disabling_and_enabling_over_the_api_sets_and_clears_the_reason(api):
    webhook = create(api)
    url = f"/v1/webhooks/{webhook['id']}"
    endpoint = WebhookEndpoint.objects.get(pk=webhook["id"])
    endpoint.failing_since = timezone.now()
    endpoint.save()

    disabled = api.patch(url, {"enabled": False}).json()["data"]
    assert disabled["enabled"] is False and disabled["disabled_reason"]
    enabled = api.patch(url, {"enabled": True}).json()["data"]
    assert enabled["enabled"] is True
    assert enabled["disabled_reason"] is None and enabled["failing_since"] is None


def test_automatic_disable_reason_is_visible_in_the_api(api):
    webhook = create(api)
    WebhookEndpoint.objects.filter(pk=webhook["id"]).update(
        enabled=False, disabled_reason="The receiver answered 410 Gone."
    )
    data = api.get(f"/v1/webhooks/{webhook['id']}").json()["data"]
    assert data["enabled"] is False
    assert data["disabled_reason"] == "The receiver answered 410 Gone."


def test_delete_removes_the_endpoint_and_its_log(api):
    webhook = create(api)
    endpoint_send_test(endpoint=WebhookEndpoint.objects.get(pk=webhook["id"]))
    assert api.delete(f"/v1/webhooks/{webhook['id']}").status_code == 200
    assert api.get(f"/v1/webhooks/{webhook['id']}").status_code == 404
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.parametrize("path", ["", "/deliveries", "/rotate-secret", "/test", "/replay-failed"])
def test_unknown_or_malformed_webhook_id_is_404(api, path):
    for webhook_id in ("0" * 24, "not-an-id"):
        response = api.get(f"/v1/webhooks/{webhook_id}{path}")
        if path and path != "/deliveries":
            response = api.post(f"/v1/webhooks/{webhook_id}{path}", {"since": "2026-01-01"})
        assert response.status_code == 404


# ------------------------------------------------------------------------------ rotate, test


def test_rotate_secret_returns_a_new_secret_once_and_both_sign_for_a_day(
    api, django_capture_on_commit_callbacks
):
    with Receiver() as receiver:
        webhook = create(api, url=receiver.url)
        old = webhook["secret"]

        rotated = api.post(f"/v1/webhooks/{webhook['id']}/rotate-secret")

        assert rotated.status_code == 200
        data = rotated.json()["data"]
        new = data["secret"]
        assert new.startswith("whsec_") and new != old
        expires = data["previous_secret_expires_at"]
        assert expires and data["secret_rotated_at"]
        read = api.get(f"/v1/webhooks/{webhook['id']}")
        assert new not in read.content.decode() and old not in read.content.decode()
        receiver.secrets = [old, new]
        with django_capture_on_commit_callbacks(execute=True):
            assert api.post(f"/v1/webhooks/{webhook['id']}/test").status_code == 202

    assert receiver.received[0].verified_by == [0, 1]


def test_test_ping_is_delivered_signed_and_logged(api, django_capture_on_commit_callbacks):
    with Receiver() as receiver:
        webhook = create(api, url=receiver.url, events=["call.ended"])
        receiver.secrets = [webhook["secret"]]

        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(f"/v1/webhooks/{webhook['id']}/test")

    assert response.status_code == 202
    queued = response.json()["data"]
    assert queued["event_type"] == "ping" and queued["status"] == "pending"
    got = receiver.received[0]
    assert got.verified_by == [0]
    assert got.json["type"] == "ping"
    assert got.json["data"]["webhook_id"] == webhook["id"]
    assert got.headers["webhook-id"] == queued["event_id"]
    log = api.get(f"/v1/webhooks/{webhook['id']}/deliveries").json()
    assert log["meta"]["total"] == 1
    entry = log["data"][0]
    assert entry["status"] == "delivered" and entry["attempt_count"] == 1
    attempt = entry["attempts"][0]
    assert attempt["status_code"] == 200 and attempt["outcome"] == "delivered"
    assert attempt["latency_ms"] is not None and attempt["response_body"] == '{"ok": true}'
    assert entry["next_attempt_at"] is None


def test_test_ping_and_replays_on_a_disabled_endpoint_are_409(api):
    webhook = create(api, enabled=False)
    base = f"/v1/webhooks/{webhook['id']}"
    assert api.post(f"{base}/test").status_code == 409
    assert api.post(f"{base}/replay-failed", {"since": "2026-01-01T00:00:00Z"}).status_code == 409
    assert WebhookDelivery.objects.count() == 0


# ------------------------------------------------------------------------------ log and replay


def failed_delivery(endpoint: WebhookEndpoint, receiver: Receiver, *, created_at=None):
    receiver.answer(Answer(400, body=b"bad"))
    delivery = endpoint_send_test(endpoint=endpoint)
    assert deliver(delivery.id) == "failed"
    if created_at is not None:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=created_at)
    delivery.refresh_from_db()
    return delivery


def test_delivery_log_lists_attempts_filters_by_status_and_paginates(api):
    with Receiver() as receiver:
        webhook = create(api, url=receiver.url)
        endpoint = WebhookEndpoint.objects.get(pk=webhook["id"])
        failed = failed_delivery(endpoint, receiver)
        delivered = endpoint_send_test(endpoint=endpoint)
        deliver(delivered.id)
        pending = endpoint_send_test(endpoint=endpoint)
    path = f"/v1/webhooks/{webhook['id']}/deliveries"

    def ids(params=None):
        return [d["id"] for d in api.get(path, params).json()["data"]]

    assert set(ids()) == {failed.id, delivered.id, pending.id}
    assert ids({"status": "failed"}) == [failed.id]
    assert ids({"status": "pending"}) == [pending.id]
    assert ids({"status": "delivered"}) == [delivered.id]
    assert len(ids({"limit": 2})) == 2
    assert api.get(path, {"limit": 2, "offset": 2}).json()["meta"]["total"] == 3
    entry = next(d for d in api.get(path).json()["data"] if d["id"] == failed.id)
    assert entry["event_type"] == "ping" and entry["event_id"] == failed.event_id
    assert entry["last_status_code"] == 400 and entry["last_error"] == "HTTP 400"
    assert entry["attempts"][0]["response_body"] == "bad"
    pending_entry = next(d for d in api.get(path).json()["data"] if d["id"] == pending.id)
    assert pending_entry["next_attempt_at"] is not None
    for params in ({"status": "lost"}, {"limit": 0}, {"offset": -1}, {"colour": "red"}):
        response = api.get(path, params)
        assert response.status_code == 400
        assert next(iter(params)) in response.json()["errors"]


def test_replay_sends_the_same_message_again_now(api, django_capture_on_commit_callbacks):
    with Receiver() as receiver:
        webhook = create(api, url=receiver.url)
        receiver.secrets = [webhook["secret"]]
        endpoint = WebhookEndpoint.objects.get(pk=webhook["id"])
        failed = failed_delivery(endpoint, receiver)

        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(f"/v1/webhooks/{webhook['id']}/deliveries/{failed.id}/replay")

    assert response.status_code == 202
    assert response.json()["data"]["status"] == "pending"
    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == failed.event_id
    assert first.body == second.body
    assert second.verified_by == [0]
    failed.refresh_from_db()
    assert failed.status == DeliveryStatus.DELIVERED
    assert [a.outcome for a in failed.attempts.all()] == ["failed", "delivered"]


def test_replay_of_another_endpoints_delivery_is_404(api):
    with Receiver() as receiver:
        one = create(api, url=receiver.url)
        two = create(api, url=receiver.url)
        delivery = failed_delivery(WebhookEndpoint.objects.get(pk=one["id"]), receiver)
    response = api.post(f"/v1/webhooks/{two['id']}/deliveries/{delivery.id}/replay")
    assert response.status_code == 404
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED


def test_replay_failed_replays_failed_deliveries_since_a_date(
    api, django_capture_on_commit_callbacks
):
    now = timezone.now()
    with Receiver() as receiver:
        webhook = create(api, url=receiver.url)
        endpoint = WebhookEndpoint.objects.get(pk=webhook["id"])
        old = failed_delivery(endpoint, receiver, created_at=now - timedelta(days=3))
        recent = failed_delivery(endpoint, receiver, created_at=now - timedelta(hours=1))
        delivered = endpoint_send_test(endpoint=endpoint)
        deliver(delivered.id)
        sent_before = len(receiver.received)
        since = (now - timedelta(days=1)).isoformat()

        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(f"/v1/webhooks/{webhook['id']}/replay-failed", {"since": since})

    assert response.status_code == 202
    assert response.json()["data"] == {"replayed": 1}
    assert [r.headers["webhook-id"] for r in receiver.received[sent_before:]] == [recent.event_id]
    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.status == DeliveryStatus.FAILED
    assert recent.status == DeliveryStatus.DELIVERED


@pytest.mark.parametrize("body", [{}, {"since": "yesterday"}, {"since": 5}, {"since": None}])
def test_replay_failed_needs_a_valid_since(api, body):
    webhook = create(api)
    response = api.post(f"/v1/webhooks/{webhook['id']}/replay-failed", body)
    assert response.status_code == 400
    assert "since" in response.json()["errors"]


# ------------------------------------------------------------------------------ no secret leaks


def test_secrets_are_never_stored_in_clear_nor_logged(
    api, no_api_key_in_logs, django_capture_on_commit_callbacks
):
    connection.force_debug_cursor = True  # log every SQL statement with its parameters
    logs_before = len(no_api_key_in_logs.logs)
    try:
        with Receiver() as receiver:
            webhook = create(api, url=receiver.url)
            base = f"/v1/webhooks/{webhook['id']}"
            rotated = api.post(f"{base}/rotate-secret").json()["data"]["secret"]
            receiver.answer(Answer(500))
            with django_capture_on_commit_callbacks(execute=True):
                api.post(f"{base}/test")
            api.get(f"{base}/deliveries")
            api.patch(base, {"url": "gopher://bad"})
    finally:
        connection.force_debug_cursor = False

    secrets = [webhook["secret"], rotated]
    needles = secrets + [s.removeprefix("whsec_") for s in secrets]
    logs = no_api_key_in_logs.logs[logs_before:]
    assert any("SELECT" in text for text in logs)  # the scan did see the SQL
    assert any("webhook delivery" in text for text in logs)
    assert no_api_key_in_logs.leaked(needles) == []
    assert_not_stored(needles)
    stored = WebhookEndpoint.objects.get(pk=webhook["id"])
    assert stored.secret_encrypted and stored.previous_secret_encrypted


# ------------------------------------------------------------------------------ schema

DOCUMENTED = {
    "/v1/webhooks": {"get", "post"},
    "/v1/webhooks/{webhook_id}": {"get", "patch", "delete"},
    "/v1/webhooks/{webhook_id}/rotate-secret": {"post"},
    "/v1/webhooks/{webhook_id}/test": {"post"},
    "/v1/webhooks/{webhook_id}/deliveries": {"get"},
    "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/replay": {"post"},
    "/v1/webhooks/{webhook_id}/replay-failed": {"post"},
}


def test_openapi_schema_documents_the_webhooks_api_with_key_security(client):
    schema = client.get("/v1/schema/", {"format": "json"}).json()
    for path, methods in DOCUMENTED.items():
        assert methods <= set(schema["paths"][path]), path
        for method in methods:
            security = schema["paths"][path][method].get("security", [])
            assert any("ApiKeyHeader" in requirement for requirement in security)
    create = schema["paths"]["/v1/webhooks"]["post"]["requestBody"]["content"]
    ref = create["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert {"url", "description", "events", "enabled"} == set(
        schema["components"]["schemas"][ref]["properties"]
    )
    parameters = schema["paths"]["/v1/webhooks/{webhook_id}/deliveries"]["get"]["parameters"]
    assert {"status", "limit", "offset"} <= {p["name"] for p in parameters}
