"""Every /v1 endpoint: authentication, scopes, and organization isolation."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from accounts.models import ALL_SCOPES, APIKey
from accounts.services import api_key_revoke
from assistants.models import Assistant, KnowledgeEntry
from calls.models import Call, LiveSessionToken, TranscriptEntry
from telephony.models import PhoneNumber, TwilioAccount, TwilioCall
from telephony.services import phone_number_create, twilio_account_create
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.services import endpoint_create, endpoint_send_test
from widgets.models import Widget, WidgetOrigin


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str
    scope: str
    success: int = 200
    body: object = None  # a dict, or a callable taking the world

    def url(self, world: dict) -> str:
        return self.path.format(**world)

    def payload(self, world: dict):
        return self.body(world) if callable(self.body) else self.body


ENDPOINTS = [
    Endpoint("assistants-list", "GET", "/v1/assistants", "assistants:read"),
    Endpoint(
        "assistants-create",
        "POST",
        "/v1/assistants",
        "assistants:write",
        201,
        {"name": "New", "system_prompt": "Be brief."},
    ),
    Endpoint("assistants-get", "GET", "/v1/assistants/{assistant}", "assistants:read"),
    Endpoint(
        "assistants-patch",
        "PATCH",
        "/v1/assistants/{assistant}",
        "assistants:write",
        body={"name": "Renamed"},
    ),
    Endpoint("assistants-delete", "DELETE", "/v1/assistants/{assistant}", "assistants:write"),
    Endpoint("widgets-list", "GET", "/v1/widgets", "widgets:read"),
    Endpoint("widgets-create", "POST", "/v1/widgets", "widgets:write", 201),
    Endpoint("widgets-get", "GET", "/v1/widgets/{widget}", "widgets:read"),
    Endpoint(
        "widgets-patch",
        "PATCH",
        "/v1/widgets/{widget}",
        "widgets:write",
        body={"call_to_action": "Changed"},
    ),
    Endpoint("widgets-delete", "DELETE", "/v1/widgets/{widget}", "widgets:write"),
    Endpoint(
        "widgets-create-call",
        "POST",
        "/v1/widgets/create-call",
        "widgets:write",
        201,
        lambda w: {"widget_id": w["widget"]},
    ),
    Endpoint("calls-list", "GET", "/v1/calls", "calls:read"),
    Endpoint(
        "calls-initiate",
        "POST",
        "/v1/calls/initiate",
        "calls:write",
        201,
        lambda w: {"assistantId": w["assistant"], "type": "web"},
    ),
    Endpoint("calls-get", "GET", "/v1/calls/{call}", "calls:read"),
    Endpoint("calls-transcripts", "GET", "/v1/calls/{call}/transcripts", "calls:read"),
    Endpoint("calls-analysis", "GET", "/v1/calls/{call}/analysis", "calls:read"),
    Endpoint("calls-live", "GET", "/v1/calls/{call}/live", "calls:read"),
    # A queued call nobody has connected to: ended at once (200); a running one answers 202.
    Endpoint("calls-end", "POST", "/v1/calls/{live_call}/end", "calls:write"),
    Endpoint("calls-cancel", "POST", "/v1/calls/{live_call}/cancel", "calls:write"),
    Endpoint("calls-turns", "GET", "/v1/calls/{call}/turns", "calls:read"),
    Endpoint("webhooks-list", "GET", "/v1/webhooks", "webhooks:read"),
    Endpoint(
        "webhooks-create",
        "POST",
        "/v1/webhooks",
        "webhooks:write",
        201,
        {"url": "https://hooks.example.com/new", "events": ["call.ended"]},
    ),
    Endpoint("webhooks-get", "GET", "/v1/webhooks/{webhook}", "webhooks:read"),
    Endpoint(
        "webhooks-patch",
        "PATCH",
        "/v1/webhooks/{webhook}",
        "webhooks:write",
        body={"description": "Changed"},
    ),
    Endpoint("webhooks-delete", "DELETE", "/v1/webhooks/{webhook}", "webhooks:write"),
    Endpoint(
        "webhooks-rotate-secret", "POST", "/v1/webhooks/{webhook}/rotate-secret", "webhooks:write"
    ),
    Endpoint("webhooks-test", "POST", "/v1/webhooks/{webhook}/test", "webhooks:write", 202),
    Endpoint("webhooks-deliveries", "GET", "/v1/webhooks/{webhook}/deliveries", "webhooks:read"),
    Endpoint(
        "webhooks-delivery-replay",
        "POST",
        "/v1/webhooks/{webhook}/deliveries/{delivery}/replay",
        "webhooks:write",
        202,
    ),
    Endpoint(
        "webhooks-replay-failed",
        "POST",
        "/v1/webhooks/{webhook}/replay-failed",
        "webhooks:write",
        202,
        {"since": "2020-01-01T00:00:00Z"},
    ),
]
ENDPOINTS += [
    Endpoint(
        "calls-phone-initiate",
        "POST",
        "/v1/calls/phone/initiate",
        "calls:write",
        201,
        lambda w: {
            "phone_purchase_id": w["phone_number"],
            "phoneNumber": "+14155552671",
            "provider": "twilio",
        },
    ),
    Endpoint("phone-numbers-list", "GET", "/v1/phone-numbers", "phone_numbers:read"),
    Endpoint(
        "phone-numbers-create",
        "POST",
        "/v1/phone-numbers",
        "phone_numbers:write",
        201,
        lambda w: {
            "number": "+14155550199",
            "twilio_account_id": w["twilio_account"],
            "assistant_id": w["assistant"],
        },
    ),
    Endpoint("phone-numbers-get", "GET", "/v1/phone-numbers/{phone_number}", "phone_numbers:read"),
    Endpoint(
        "phone-numbers-patch",
        "PATCH",
        "/v1/phone-numbers/{phone_number}",
        "phone_numbers:write",
        body={"name": "Front desk"},
    ),
    Endpoint(
        "phone-numbers-delete", "DELETE", "/v1/phone-numbers/{phone_number}", "phone_numbers:write"
    ),
    Endpoint("twilio-accounts-list", "GET", "/v1/telephony/twilio-accounts", "phone_numbers:read"),
    Endpoint(
        "twilio-accounts-create",
        "POST",
        "/v1/telephony/twilio-accounts",
        "phone_numbers:write",
        201,
        {"name": "New", "account_sid": "AC" + "e" * 32, "auth_token": "f" * 32},
    ),
    Endpoint(
        "twilio-accounts-get",
        "GET",
        "/v1/telephony/twilio-accounts/{twilio_account}",
        "phone_numbers:read",
    ),
    Endpoint(
        "twilio-accounts-patch",
        "PATCH",
        "/v1/telephony/twilio-accounts/{twilio_account}",
        "phone_numbers:write",
        body={"name": "Renamed"},
    ),
    # The spare account: one that phone numbers use cannot be deleted (409).
    Endpoint(
        "twilio-accounts-delete",
        "DELETE",
        "/v1/telephony/twilio-accounts/{spare_account}",
        "phone_numbers:write",
    ),
]
IDS = [e.name for e in ENDPOINTS]
OBJECT_ENDPOINTS = [e for e in ENDPOINTS if "{" in e.path or callable(e.body)]
LIST_ENDPOINTS = {
    "assistants-list": "assistant",
    "widgets-list": "widget",
    "calls-list": "call",
    "webhooks-list": "webhook",
    "phone-numbers-list": "phone_number",
    "twilio-accounts-list": "twilio_account",
}
# Distinct numbers for the worlds of both organizations (numbers are unique everywhere).
NUMBERS = (f"+1415555{n:04d}" for n in itertools.count(1000))


def build_world(org, make_assistant, make_widget, make_call) -> dict:
    assistant = make_assistant(org, knowledge=[{"question": "Q?", "answer": "A."}])
    widget = make_widget(org, assistant=assistant, allowed_origins=["https://a.example.com"])
    call = make_call(org, assistant=assistant, widget=widget, status="completed")
    # end/cancel's target (a completed call is a 409).
    live_call = make_call(org, assistant=assistant, widget=widget, status="queued")
    TranscriptEntry.objects.create(call=call, seq=0, role="user", text="hello")
    webhook, _ = endpoint_create(organization=org, url="https://hooks.example.com/in")
    delivery = endpoint_send_test(endpoint=webhook)  # its queue message never runs here
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status="failed")
    twilio_account = twilio_account_create(
        organization=org, name="Main", account_sid="AC" + "a" * 32, auth_token="b" * 32
    )
    spare_account = twilio_account_create(
        organization=org, name="Spare", account_sid="AC" + "c" * 32, auth_token="d" * 32
    )
    phone_number = phone_number_create(
        organization=org, number=next(NUMBERS), twilio_account=twilio_account, assistant=assistant
    )
    return {
        "twilio_account": twilio_account.id,
        "spare_account": spare_account.id,
        "phone_number": phone_number.id,
        "assistant": assistant.id,
        "widget": widget.id,
        "call": call.id,
        "live_call": live_call.id,
        "webhook": webhook.id,
        "delivery": delivery.id,
    }


@pytest.fixture
def world(organization, make_assistant, make_widget, make_call):
    return build_world(organization, make_assistant, make_widget, make_call)


def database_state() -> dict:
    """Everything the API could change, as plain data."""
    models = (
        Assistant,
        KnowledgeEntry,
        Widget,
        WidgetOrigin,
        Call,
        TranscriptEntry,
        LiveSessionToken,
        WebhookEndpoint,
        WebhookDelivery,
        WebhookAttempt,
        TwilioAccount,
        PhoneNumber,
        TwilioCall,
    )
    state = {}
    for model in models:
        rows = []
        for obj in model.objects.order_by("pk"):
            row = model_to_dict(obj)
            if hasattr(obj, "updated_at"):
                row["updated_at"] = obj.updated_at
            rows.append(row)
        state[model.__name__] = rows
    return state


def send(client, endpoint: Endpoint, world: dict):
    return client.request(endpoint.method, endpoint.url(world), endpoint.payload(world))


# ------------------------------------------------------------------------------ scopes


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_key_with_every_scope_but_the_needed_one_is_403_naming_it(make_api, world, endpoint):
    client = make_api(scopes=[s for s in ALL_SCOPES if s != endpoint.scope])
    before = database_state()

    response = send(client, endpoint, world)

    assert response.status_code == 403, response.content
    body = response.json()
    assert body["status"] is False
    assert endpoint.scope in body["message"]
    assert database_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_key_with_only_the_needed_scope_succeeds(make_api, world, endpoint):
    client = make_api(scopes=[endpoint.scope])

    response = send(client, endpoint, world)

    assert response.status_code == endpoint.success, response.content
    assert response.json()["status"] is True


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_key_with_no_scope_at_all_is_403(make_api, world, endpoint):
    response = send(make_api(scopes=[]), endpoint, world)
    assert response.status_code == 403
    assert endpoint.scope in response.json()["message"]


# ------------------------------------------------------------------------------ authentication


def revoked_key(make_api_key) -> str:
    api_key, secret = make_api_key()
    api_key_revoke(api_key=api_key)
    return secret


BAD_KEYS = {
    "unknown": lambda make_api_key: "vwk_" + "0" * 8 + "A" * 43,
    "malformed": lambda make_api_key: "not-a-key",
    "too-long": lambda make_api_key: "vwk_" + "a" * 500,
    "revoked": revoked_key,
    "hash-as-key": lambda make_api_key: make_api_key()[0].secret_hash,
    "prefix-only": lambda make_api_key: make_api_key()[0].prefix,
    "tampered": lambda make_api_key: make_api_key()[1][:-1] + "#",
}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_request_without_key_is_401_with_www_authenticate(anon, world, endpoint):
    before = database_state()

    response = send(anon, endpoint, world)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    body = response.json()
    assert body["status"] is False
    assert "API key" in body["message"]
    assert database_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("bearer", [False, True], ids=["x-api-key", "bearer"])
@pytest.mark.parametrize("kind", sorted(BAD_KEYS))
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_unknown_malformed_or_revoked_key_is_401(
    make_api_key, client_with_key, world, endpoint, kind, bearer
):
    client = client_with_key(BAD_KEYS[kind](make_api_key), bearer=bearer)
    before = database_state()

    response = send(client, endpoint, world)

    assert response.status_code == 401, response.content
    assert "WWW-Authenticate" in response.headers
    assert response.json() == {"status": False, "message": "Invalid or revoked API key."}
    assert database_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("bearer", [False, True], ids=["x-api-key", "bearer"])
def test_both_key_headers_authenticate(make_api, world, bearer):
    response = make_api(bearer=bearer).get("/v1/assistants")
    assert response.status_code == 200
    assert [a["id"] for a in response.json()["data"]] == [world["assistant"]]


@pytest.mark.django_db
def test_bearer_scheme_is_case_insensitive_and_other_schemes_are_ignored(api_key, world):
    from django.test import Client

    _, secret = api_key
    client = Client()
    assert (
        client.get("/v1/widgets", headers={"Authorization": f"bearer {secret}"}).status_code == 200
    )
    response = client.get("/v1/widgets", headers={"Authorization": f"Basic {secret}"})
    assert response.status_code == 401


@pytest.mark.django_db
def test_revoking_a_key_stops_it_immediately(make_api_key, client_with_key, world):
    api_key, secret = make_api_key()
    client = client_with_key(secret)
    assert client.get("/v1/widgets").status_code == 200
    api_key_revoke(api_key=APIKey.objects.get(pk=api_key.pk))
    assert client.get("/v1/widgets").status_code == 401


@pytest.mark.django_db
def test_successful_authentication_records_last_use(api_key, client_with_key, world):
    key, secret = api_key
    assert key.last_used_at is None
    before = timezone.now()
    client_with_key(secret).get("/v1/calls")
    key.refresh_from_db()
    assert key.last_used_at is not None and key.last_used_at >= before


# ------------------------------------------------------------------------------ organizations


@pytest.fixture
def other_world(other_organization, make_assistant, make_widget, make_call):
    return build_world(other_organization, make_assistant, make_widget, make_call)


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", OBJECT_ENDPOINTS, ids=[e.name for e in OBJECT_ENDPOINTS])
def test_other_organizations_key_gets_404_and_changes_nothing(
    other_api, world, other_world, endpoint
):
    before = database_state()

    response = send(other_api, endpoint, world)

    assert response.status_code == 404, response.content
    assert response.json()["status"] is False
    assert database_state() == before


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", OBJECT_ENDPOINTS, ids=[e.name for e in OBJECT_ENDPOINTS])
def test_same_request_with_own_objects_succeeds(other_api, world, other_world, endpoint):
    """The control for the 404 matrix: org B's key on org B's objects works."""
    response = send(other_api, endpoint, other_world)
    assert response.status_code == endpoint.success, response.content


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", sorted(LIST_ENDPOINTS))
def test_lists_only_show_own_organization(api, other_api, world, other_world, endpoint):
    path = next(e.path for e in ENDPOINTS if e.name == endpoint)
    kind = LIST_ENDPOINTS[endpoint]

    mine = api.get(path).json()
    theirs = other_api.get(path).json()

    def own(w: dict) -> set:
        if kind == "call":
            return {w[kind], w["live_call"]}
        if kind == "twilio_account":
            return {w[kind], w["spare_account"]}
        return {w[kind]}

    assert {item["id"] for item in mine["data"]} == own(world)
    assert {item["id"] for item in theirs["data"]} == own(other_world)
    assert mine["meta"]["total"] == theirs["meta"]["total"] == len(own(world))


@pytest.mark.django_db
def test_created_objects_belong_to_the_keys_organization(api, other_api, other_organization):
    widget_id = other_api.post("/v1/widgets").json()["data"]["id"]
    assistant_id = other_api.post("/v1/assistants", {"name": "B", "system_prompt": "p"}).json()[
        "data"
    ]["id"]
    assert Widget.objects.get(pk=widget_id).organization == other_organization
    assert Assistant.objects.get(pk=assistant_id).organization == other_organization
    assert api.get(f"/v1/widgets/{widget_id}").status_code == 404
    assert api.get(f"/v1/assistants/{assistant_id}").status_code == 404


@pytest.mark.django_db
def test_widget_cannot_be_pointed_at_another_organizations_assistant(other_api, world, other_world):
    response = other_api.patch(
        f"/v1/widgets/{other_world['widget']}", {"assistantId": world["assistant"]}
    )
    assert response.status_code == 400
    assert "assistantId" in response.json()["errors"]
    assert Widget.objects.get(pk=other_world["widget"]).assistant_id == other_world["assistant"]


@pytest.mark.django_db
def test_calls_list_filter_by_other_organizations_assistant_is_empty(other_api, world, other_world):
    response = other_api.get("/v1/calls", {"assistant": world["assistant"]})
    assert response.status_code == 200
    assert response.json()["data"] == []
