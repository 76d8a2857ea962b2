"""The OpenAPI schema and the interactive reference."""

from __future__ import annotations

import re
from io import StringIO

import pytest
import schemathesis
import yaml
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.models import ALL_SCOPES

DOCUMENTED = {
    "/v1/assistants": {"get", "post"},
    "/v1/assistants/{assistant_id}": {"get", "patch", "delete"},
    "/v1/widgets": {"get", "post"},
    "/v1/widgets/{widget_id}": {"get", "patch", "delete"},
    "/v1/widgets/create-call": {"post"},
    "/v1/widgets/{widget_id}/public": {"get"},
    "/v1/calls": {"get"},
    "/v1/calls/initiate": {"post"},
    "/v1/calls/{call_id}": {"get"},
    "/v1/calls/{call_id}/transcripts": {"get"},
    "/v1/calls/{call_id}/analysis": {"get"},
    "/v1/calls/{call_id}/turns": {"get"},
    "/v1/calls/{call_id}/recording": {"get"},
    "/v1/calls/{call_id}/live": {"get"},
    "/v1/calls/{call_id}/end": {"post"},
    "/v1/calls/{call_id}/cancel": {"post"},
    "/v1/calls/phone/initiate": {"post"},
    "/v1/phone-numbers": {"get", "post"},
    "/v1/phone-numbers/{phone_number_id}": {"get", "patch", "delete"},
    "/v1/telephony/twilio-accounts": {"get", "post"},
    "/v1/telephony/twilio-accounts/{account_id}": {"get", "patch", "delete"},
}
METHODS = {"get", "post", "put", "patch", "delete"}
# Seed-mandated bodies that are not `data` in the envelope: (path, method, status).
BARE_BODIES = {
    ("/v1/calls/initiate", "post", "201"),
    ("/v1/calls/phone/initiate", "post", "201"),
    ("/v1/widgets/create-call", "post", "201"),
    ("/v1/widgets/{widget_id}/public", "get", "200"),
}
LISTS = {
    "assistants_list",
    "widgets_list",
    "calls_list",
    "phone_numbers_list",
    "twilio_accounts_list",
}
ERROR_REF = {"$ref": "#/components/schemas/Error"}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    assert "openapi" in response["Content-Type"]
    return response.json()


def operations(schema):
    """(path, method, operation) of every documented operation, the webhooks' included."""
    return [
        (path, method, operation)
        for path, item in sorted(schema["paths"].items())
        for method, operation in sorted(item.items())
        if method in METHODS
    ]


def test_schema_is_openapi_3_with_api_key_header_scheme(schema):
    assert schema["openapi"].startswith("3.")
    schemes = schema["components"]["securitySchemes"]
    header = [s for s in schemes.values() if s.get("type") == "apiKey"]
    assert header == [
        {"type": "apiKey", "in": "header", "name": "X-API-Key", "description": "Your API key."}
    ]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())


@pytest.mark.parametrize("path", sorted(DOCUMENTED))
def test_schema_documents_every_v1_path_and_method(schema, path):
    assert path in schema["paths"], sorted(schema["paths"])
    assert DOCUMENTED[path] <= set(schema["paths"][path])


@pytest.mark.parametrize(
    "path, method",
    [(p, m) for p, methods in sorted(DOCUMENTED.items()) for m in sorted(methods)],
)
def test_key_endpoints_require_the_api_key_security(schema, path, method):
    operation = schema["paths"][path][method]
    names = {name for requirement in operation.get("security", []) for name in requirement}
    if path == "/v1/widgets/{widget_id}/public":
        assert not names  # public configuration: no key
    else:
        assert "ApiKeyHeader" in names
        # Either header, not both: one requirement each (an OR).
        assert {"ApiKeyHeader": []} in operation["security"]
        assert {"BearerKey": []} in operation["security"]


def test_schema_documents_request_bodies_of_seed_dtos(schema):
    components = schema["components"]["schemas"]

    def properties(path, method):
        ref = schema["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"][
            "$ref"
        ]
        return set(components[ref.rsplit("/", 1)[-1]]["properties"])

    assert {"assistantId", "type"} <= properties("/v1/calls/initiate", "post")
    assert "widget_id" in properties("/v1/widgets/create-call", "post")
    assert {"assistantId", "background_color", "allowed_origins", "card_radius"} <= properties(
        "/v1/widgets/{widget_id}", "patch"
    )


def test_default_schema_format_is_yaml_and_parses(client, db):
    response = client.get("/v1/schema/")
    assert response.status_code == 200
    parsed = yaml.safe_load(response.content)
    assert "/v1/calls/initiate" in parsed["paths"]


def test_spectacular_command_validates_without_warnings(tmp_path, db):
    target = tmp_path / "schema.yaml"
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(target),
        stdout=StringIO(),
        stderr=StringIO(),
    )
    parsed = yaml.safe_load(target.read_text())
    assert set(DOCUMENTED) <= set(parsed["paths"])


def test_docs_page_renders_with_local_assets_only(client, db):
    response = client.get("/v1/docs/")

    assert response.status_code == 200
    content = response.content.decode()
    assets = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)["\']', content)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert asset.startswith("/"), asset
        assert not asset.startswith("//"), asset
    assert not re.search(r"https?://", content), re.findall(r"https?://\S+", content)
    assert "/v1/schema/" in content


def test_docs_assets_are_served(client, db):
    content = client.get("/v1/docs/").content.decode()
    for asset in re.findall(r'src="(/static/[^"]+)"', content):
        response = client.get(asset)
        assert response.status_code == 200, asset


# ------------------------------------------------------------------ envelope and statuses


def json_schema(response: dict) -> dict:
    return response["content"]["application/json"]["schema"]


def component(schema, ref: dict) -> dict:
    return schema["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]


@pytest.mark.parametrize("path, method", sorted((p, m) for p, ms in DOCUMENTED.items() for m in ms))
def test_success_is_documented_as_the_envelope_around_a_described_data_schema(schema, path, method):
    operation = schema["paths"][path][method]
    successes = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
    assert successes, operation["responses"]
    for code, response in successes.items():
        if "application/json" not in response.get("content", {}):
            assert path.endswith("/recording")  # the WAV itself
            continue
        body = json_schema(response)
        if (path, method, code) in BARE_BODIES:
            assert "$ref" in body  # its own schema, checked below
            continue
        assert body["properties"]["status"] == {"type": "boolean", "enum": [True]}
        assert body["properties"]["message"] == {"type": "string"}
        assert {"status", "message", "data"} <= set(body["required"])
        assert body["additionalProperties"] is False
        data = body["properties"]["data"]
        if method == "delete":
            assert data["enum"] == [None] and data["nullable"] is True
        elif operation["operationId"] in LISTS:
            assert data["type"] == "array" and "$ref" in data["items"]
            assert body["properties"]["meta"] == {"$ref": "#/components/schemas/PageMeta"}
            assert "meta" in body["required"]
        else:
            assert "$ref" in data, data


def test_every_operation_of_the_api_is_wrapped_in_the_envelope(schema):
    """The webhooks' too: the convention applies to every view without being asked for."""
    for path, method, operation in operations(schema):
        for code, response in operation["responses"].items():
            content = response.get("content", {})
            if not code.startswith("2") or "application/json" not in content:
                continue
            if (path, method, code) in BARE_BODIES:
                continue
            body = json_schema(response)
            assert {"status", "message", "data"} <= set(body["required"]), (path, method)


def expected_error_statuses(operation: dict, method: str) -> set[str]:
    locations = {parameter["in"] for parameter in operation.get("parameters", [])}
    expected = {"500"}
    if "requestBody" in operation or "query" in locations:
        expected.add("400")
    if any(operation.get("security", [])):
        expected |= {"401", "403"}
    if "path" in locations:
        expected.add("404")
    if method in {"post", "put", "patch", "delete"}:
        expected.add("413")
    if "requestBody" in operation:
        expected.add("415")
    return expected


def test_every_operation_documents_the_errors_it_can_give_in_the_error_envelope(schema):
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        missing = expected_error_statuses(operation, method) - set(responses)
        assert not missing, (path, method, missing)
        for code, response in responses.items():
            if code.startswith(("4", "5")) and code != "416":
                assert json_schema(response) == ERROR_REF, (path, method, code)
                assert response["description"], (path, method, code)


EXPECTED_ERRORS = {
    ("/v1/widgets", "get"): {"400", "401", "403", "500"},
    ("/v1/widgets", "post"): {"400", "401", "403", "413", "415", "500"},
    ("/v1/widgets/{widget_id}", "delete"): {"401", "403", "404", "413", "500"},
    ("/v1/widgets/{widget_id}/public", "get"): {"404", "500"},
    ("/v1/widgets/create-call", "post"): set("400 401 403 404 413 415 429 500 503".split()),
    ("/v1/calls/initiate", "post"): {"400", "401", "403", "404", "413", "415", "500", "503"},
    ("/v1/calls/{call_id}", "get"): {"401", "403", "404", "500"},
    ("/v1/calls/{call_id}/recording", "get"): {"401", "403", "404", "416", "500"},
    ("/v1/calls/phone/initiate", "post"): {"400", "401", "403", "404", "413", "415", "500"},
    ("/v1/telephony/twilio-accounts/{account_id}", "delete"): {
        "401",
        "403",
        "404",
        "409",
        "413",
        "500",
    },
    ("/v1/assistants/{assistant_id}", "delete"): {"401", "403", "404", "409", "413", "500"},
}


@pytest.mark.parametrize("path, method", sorted(EXPECTED_ERRORS))
def test_operation_documents_exactly_the_error_statuses_it_gives(schema, path, method):
    responses = schema["paths"][path][method]["responses"]
    assert {code for code in responses if code >= "400"} == EXPECTED_ERRORS[path, method]


def test_error_envelope_schema(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["status", "message"]
    assert component(schema, error["properties"]["status"]) == {"type": "boolean", "enum": [False]}
    assert error["properties"]["errors"]["type"] == "object"
    assert error["additionalProperties"] is False
    meta = schema["components"]["schemas"]["PageMeta"]
    assert set(meta["required"]) == {"total", "limit", "offset"}


def test_deletes_document_200_with_null_data_not_204(schema):
    deletes = [(path, op) for path, method, op in operations(schema) if method == "delete"]
    assert len(deletes) >= 3
    for path, operation in deletes:
        assert "204" not in operation["responses"], path
        data = json_schema(operation["responses"]["200"])["properties"]["data"]
        assert data["enum"] == [None], path


def test_views_declare_their_own_statuses_which_get_the_error_schema(schema):
    paths = schema["paths"]
    assert json_schema(paths["/v1/assistants/{assistant_id}"]["delete"]["responses"]["409"]) == (
        ERROR_REF
    )
    for path in ("/v1/calls/initiate", "/v1/widgets/create-call"):
        responses = paths[path]["post"]["responses"]
        assert "404" in responses  # an id in the body that is not found
        assert "Retry-After" in responses["503"]["headers"], path  # the concurrency limit
    throttled = paths["/v1/widgets/create-call"]["post"]["responses"]["429"]
    assert "Retry-After" in throttled["headers"]
    assert "429" not in paths["/v1/calls/initiate"]["post"]["responses"]  # not throttled
    recording = paths["/v1/calls/{call_id}/recording"]["get"]["responses"]
    assert set(recording["206"]["content"]) == {"audio/wav"}
    assert "content" not in recording["416"]  # an empty body


def test_seed_flat_bodies_and_the_public_config_have_their_own_schemas(schema):
    paths = schema["paths"]

    def properties(path, method, code):
        return set(
            component(schema, json_schema(paths[path][method]["responses"][code]))["properties"]
        )

    assert properties("/v1/calls/initiate", "post", "201") == {
        "status",
        "message",
        "callId",
        "gateway",
    }
    assert properties("/v1/widgets/create-call", "post", "201") == {
        "status",
        "message",
        "call_id",
        "assistant_id",
        "gateway",
    }
    assert {"id", "terms_sha256", "available", "origin_allowed", "call_to_action"} <= properties(
        "/v1/widgets/{widget_id}/public", "get", "200"
    )


def test_widget_and_call_data_schemas_name_every_field_answered(schema):
    components = schema["components"]["schemas"]
    assert set(components["Widget"]["properties"]) == WIDGET_KEYS
    assert set(components["Call"]["properties"]) == CALL_KEYS
    assert set(components["CallTranscripts"]["properties"]) == {
        "call_id",
        "transcript_status",
        "transcripts",
    }
    assert set(components["CallTurn"]["properties"]) == {
        "index",
        "speech_end_ms",
        "endpoint_silence_ms",
        "endpoint_ms",
        "transcript_ms",
        "first_text_ms",
        "first_audio_ms",
        "interruption_stop_ms",
        "created_at",
    }
    assert components["CallTurn"]["properties"]["first_audio_ms"]["nullable"] is True


def test_strict_request_bodies_refuse_unknown_fields_in_the_schema(schema):
    components = schema["components"]["schemas"]
    for name in ("WidgetWriteRequest", "InitiateCallRequest", "CreateWidgetCallRequest"):
        assert components[name]["additionalProperties"] is False, name


def test_operations_name_the_scope_they_need_not_the_base_view(schema):
    operation = schema["paths"]["/v1/widgets"]["get"]
    assert "`widgets:read`" in operation["description"]
    assert "Base for API-key views" not in str(schema["paths"])


# ------------------------------------------------ real answers conform (in process, fast)

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
CALL_KEYS = {
    "id",
    "type",
    "status",
    "status_label",
    "assistant_id",
    "widget_id",
    "transport",
    "end_reason",
    "origin",
    "from_number",
    "to_number",
    "provider_call_sid",
    "variables",
    "consent",
    "created_at",
    "started_at",
    "ended_at",
    "duration",
    "recording_url",
    "analysis_status",
    "outcome",
    "summary",
}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@pytest.fixture(scope="module")
def wsgi_schema(django_db_blocker):
    """The schema, with the app in process: cases are sent to it directly (the test's database)."""
    # WSGIHandler itself, not get_wsgi_application(): that would run django.setup() again,
    # whose logging configuration undoes the session's log capture (tests/conftest.py).
    with django_db_blocker.unblock():
        return schemathesis.openapi.from_wsgi("/v1/schema/?format=json", WSGIHandler())


@pytest.fixture
def objects(db, make_assistant, make_widget, make_call, organization):
    from calls.models import CallTurn, TranscriptEntry

    assistant = make_assistant()
    widget = make_widget(assistant=assistant, allowed_origins=["https://app.example.com"])
    call = make_call(
        assistant=assistant,
        widget=widget,
        status="completed",
        transport="webrtc",
        end_reason="hangup",
        origin="https://app.example.com",
        variables={"name": "Ada"},
        consent={
            "accepted_at": "2026-01-01T00:00:00+00:00",
            "origin": "https://app.example.com",
            "terms_sha256": "0" * 64,
        },
        duration_seconds=3.5,
    )
    TranscriptEntry.objects.create(call=call, seq=1, role="user", text="Hi", start_ms=0, end_ms=9)
    TranscriptEntry.objects.create(call=call, seq=2, role="assistant", text="Hello", start_ms=20)
    CallTurn.objects.create(
        call=call,
        index=1,
        timings={"speech_end_ms": 900, "endpoint_silence_ms": 500, "endpoint_ms": 510},
    )
    return {"assistant": assistant.id, "widget": widget.id, "call": call.id}


UNKNOWN = "0123456789abcdef01234567"
# (label, method, path template, body or None, expected status); "{widget}" and the like, in
# path parameters and bodies, name the `objects` fixture's ids.
SCENARIOS = [
    ("create widget, no body", "POST", "/v1/widgets", None, 201),
    ("list widgets", "GET", "/v1/widgets", None, 200),
    ("read widget", "GET", "/v1/widgets/{widget_id}", None, 200),
    ("patch widget", "PATCH", "/v1/widgets/{widget_id}", {"call_to_action": "Talk"}, 200),
    ("public config", "GET", "/v1/widgets/{widget_id}/public", None, 200),
    ("delete widget", "DELETE", "/v1/widgets/{widget_id}", None, 200),
    ("initiate", "POST", "/v1/calls/initiate", {"assistantId": "{assistant}", "type": "web"}, 201),
    ("create-call", "POST", "/v1/widgets/create-call", {"widget_id": "{widget}"}, 201),
    ("list calls", "GET", "/v1/calls", None, 200),
    ("read call", "GET", "/v1/calls/{call_id}", None, 200),
    ("transcripts", "GET", "/v1/calls/{call_id}/transcripts", None, 200),
    ("analysis", "GET", "/v1/calls/{call_id}/analysis", None, 200),
    ("turns", "GET", "/v1/calls/{call_id}/turns", None, 200),
    ("no recording", "GET", "/v1/calls/{call_id}/recording", None, 404),
    ("list assistants", "GET", "/v1/assistants", None, 200),
    ("read assistant", "GET", "/v1/assistants/{assistant_id}", None, 200),
    ("delete assistant", "DELETE", "/v1/assistants/{assistant_id}", None, 200),
    ("field error", "PATCH", "/v1/widgets/{widget_id}", {"card_radius": -1}, 400),
    ("unknown id", "POST", "/v1/calls/initiate", {"assistantId": UNKNOWN, "type": "web"}, 404),
]
PATH_OBJECTS = {"widget_id": "widget", "call_id": "call", "assistant_id": "assistant"}


def fill(value, ids: dict):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    return value


@pytest.mark.parametrize(
    "method, path, body, status", [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS]
)
def test_answers_conform_to_the_documented_schema(
    wsgi_schema, api, objects, method, path, body, status
):
    names = re.findall(r"{([^}]+)}", path)
    case = wsgi_schema[path][method].Case(
        path_parameters={name: objects[PATH_OBJECTS[name]] for name in names},
        headers={"X-API-Key": api.secret, "Origin": "https://app.example.com"},
        **({} if body is None else {"body": fill(body, objects)}),
    )
    response = case.call()

    assert response.status_code == status, response.content
    case.validate_response(response, checks=CHECKS)


@pytest.mark.parametrize(
    "headers, body, content_type, status",
    [
        ({}, b"{}", "application/json", 401),  # no key
        ({"X-API-Key": "vwk_unknown"}, b"{}", "application/json", 401),
        (None, b"{}", "application/json", 403),  # a key without widgets:write
        ("key", b"x" * (3 * 1024 * 1024), "application/json", 413),
        ("key", b"<a/>", "text/xml", 415),
        ("key", b"{nope", "application/json", 400),  # malformed JSON
    ],
    ids=["no key", "unknown key", "missing scope", "too large", "not json", "malformed"],
)
def test_error_answers_conform_to_the_documented_schema(
    wsgi_schema, make_api, objects, headers, body, content_type, status
):
    if headers == "key":
        headers = {"X-API-Key": make_api().secret}
    elif headers is None:
        scopes = [scope for scope in ALL_SCOPES if scope != "widgets:write"]
        headers = {"X-API-Key": make_api(scopes=scopes).secret}
    operation = wsgi_schema["/v1/widgets"]["POST"]
    case = operation.Case(headers=headers)
    response = case.call(data=body, headers={**headers, "Content-Type": content_type})

    assert response.status_code == status, response.content
    case.validate_response(response, checks=CHECKS)
