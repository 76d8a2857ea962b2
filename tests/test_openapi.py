"""The OpenAPI schema and the interactive reference."""

from __future__ import annotations

import re
from io import StringIO

import pytest
import yaml
from django.core.management import call_command

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
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    assert "openapi" in response["Content-Type"]
    return response.json()


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
