"""No API key secret (nor gateway token) is stored in any table or written to any log,
whichever way the key was made and however requests using it ended."""

from __future__ import annotations

import re
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection

import calls.views
from accounts.services import api_key_create


def all_text_values() -> list[tuple[str, str, str]]:
    """(table, column, text) for every text-ish value of every table in the database."""
    tables = {m._meta.db_table for m in apps.get_models(include_auto_created=True)}
    tables |= set(connection.introspection.table_names())
    values = []
    with connection.cursor() as cursor:
        for table in sorted(tables):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            columns = [c[0] for c in cursor.description]
            for row in cursor.fetchall():
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, memoryview | bytes):
                        value = bytes(value).decode("utf-8", "replace")
                    if isinstance(value, str):
                        values.append((table, column, value))
    return values


def assert_not_stored(secrets: list[str]) -> None:
    values = all_text_values()
    assert values, "the scan read nothing"
    for secret in secrets:
        # The whole secret, and its random part alone (anything after the visible prefix).
        needles = [secret, secret[12:]] if secret.startswith("vwk_") else [secret]
        hits = [(t, c) for t, c, v in values for n in needles if n in v]
        assert not hits, f"secret {secret[:12]}… stored in {hits}"


@pytest.mark.django_db
def test_no_secret_in_any_table_or_log_after_keys_are_made_and_used(
    no_api_key_in_logs,
    organization,
    client,
    client_with_key,
    make_widget,
    make_assistant,
    monkeypatch,
):
    connection.force_debug_cursor = True  # log every SQL statement with its parameters
    try:
        secrets = []

        # 1. the command
        out = StringIO()
        call_command("create_api_key", "--organization", "Acme", "--scopes", "all", stdout=out)
        secrets.append(out.getvalue().strip().splitlines()[-1])
        call_command("demo_setup", stdout=out)
        secrets.append(re.search(r"shown once, all scopes\): (\S+)", out.getvalue()).group(1))

        # 2. the admin (session, admin log entry)
        admin = User.objects.create(username="root", is_staff=True, is_superuser=True)
        client.force_login(admin)
        page = client.post(
            "/admin/accounts/apikey/add/",
            {"organization": organization.pk, "name": "admin key", "scopes": ["calls:read"]},
        ).content.decode()
        secrets.append(re.search(r'value="(vwk_[^"]+)" id="new-api-key"', page).group(1))

        # 3. the services
        _, secret = api_key_create(
            organization=organization,
            name="svc key",
            scopes=["calls:read", "calls:write", "widgets:write"],
        )
        secrets.append(secret)

        assert all(s.startswith("vwk_") for s in secrets)
        assert set(secrets) <= set(no_api_key_in_logs.keys)

        # Authenticated requests, both headers.
        assistant = make_assistant()
        widget = make_widget(assistant=assistant, allowed_origins=["https://app.example.com"])
        tokens = []
        for bearer in (False, True):
            api = client_with_key(secret, bearer=bearer)
            assert api.get("/v1/calls").status_code == 200
            started = api.post("/v1/calls/initiate", {"assistantId": assistant.id, "type": "web"})
            assert started.status_code == 201
            created = api.post("/v1/widgets/create-call", {"widget_id": widget.id})
            assert created.status_code == 201
            for body in (started.json(), created.json()):
                tokens += parse_qs(urlsplit(body["gateway"]["url"]).query)["token"]

        # Failed requests: missing scope, tampered key, revoked-looking key, key in the URL.
        for key in secrets[:3]:
            assert client_with_key(key).post("/v1/widgets").status_code in (201, 403)
        assert client_with_key(secrets[2]).post("/v1/widgets").status_code == 403
        assert client_with_key(secret[:-2] + "xx").get("/v1/calls").status_code == 401
        assert client_with_key(secret.upper()).get("/v1/calls").status_code == 401
        assert client.get(f"/v1/calls?api_key={secret}").status_code in (401, 403)
        bad_body = client_with_key(secret).post(
            "/v1/calls/initiate", {"assistantId": secret, "type": "web"}
        )
        assert bad_body.status_code == 400

        # A 500 inside a view while the key is on the request.
        def explode(**kwargs):
            raise RuntimeError("database on fire")

        monkeypatch.setattr(calls.views, "call_list", explode)
        failed = client_with_key(secret).get("/v1/calls", headers={"X-Debug": secret})
        assert failed.status_code == 500
        assert failed.json() == {"status": False, "message": "Internal server error."}
        assert secret not in failed.content.decode()
    finally:
        connection.force_debug_cursor = False

    assert any("Unhandled error" in text for text in no_api_key_in_logs.logs)
    assert any("SELECT" in text for text in no_api_key_in_logs.logs)
    assert not no_api_key_in_logs.leaked(secrets + tokens)
    assert len(tokens) == 4
    assert_not_stored(secrets + tokens)


@pytest.mark.django_db
def test_scan_finds_a_secret_that_is_stored(organization):
    """The control: the scan is able to see a secret stored in any column."""
    _, secret = api_key_create(organization=organization, name="k", scopes=[])
    organization.name = f"oops {secret}"
    organization.save()
    with pytest.raises(AssertionError, match="stored in"):
        assert_not_stored([secret])


def test_leak_check_finds_a_key_in_a_log_text(no_api_key_in_logs):
    guard = type(no_api_key_in_logs)
    logs = ["INFO x: nothing", "DEBUG y: got vwk_abc"]
    assert guard(keys=[], logs=logs).leaked(["vwk_abc", "vwk_def"]) == ["vwk_abc"]
    assert guard(keys=[], logs=["INFO x: vwk_ab"]).leaked(["vwk_abc"]) == []


def test_session_guard_records_generated_keys_and_log_records(no_api_key_in_logs, db):
    import logging

    from accounts.models import Organization

    organization = Organization.objects.create(name="Guarded")
    _, secret = api_key_create(organization=organization, name="k", scopes=[])
    assert no_api_key_in_logs.keys[-1] == secret
    logging.getLogger("django.request").debug("marker %s", "7d1f0c")
    assert no_api_key_in_logs.logs[-1].endswith("marker 7d1f0c")
