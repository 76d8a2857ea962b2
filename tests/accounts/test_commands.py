"""Management commands: create_api_key and demo_setup."""

from __future__ import annotations

import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import APIKey, Organization
from assistants.models import Assistant, KnowledgeEntry
from widgets.models import Widget, WidgetOrigin


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
class TestCreateApiKey:
    def test_creates_missing_organization_and_prints_key_alone_on_last_line(self, client_with_key):
        output = run(
            "create_api_key", "--organization", "Acme", "--scopes", "calls:read,widgets:read"
        )

        organization = Organization.objects.get(name="Acme")
        key = output.strip().splitlines()[-1]
        assert key == key.strip() and " " not in key
        api_key = APIKey.objects.get(organization=organization)
        assert api_key.scopes == ["calls:read", "widgets:read"]
        assert api_key.prefix == key[:12]
        assert api_key.secret_hash == hashlib.sha256(key.encode()).hexdigest()
        assert key not in api_key.secret_hash

        client = client_with_key(key)
        assert client.get("/v1/calls").status_code == 200
        assert client.get("/v1/widgets").status_code == 200
        forbidden = client.post("/v1/widgets")
        assert forbidden.status_code == 403
        assert "widgets:write" in forbidden.json()["message"]

    def test_reuses_an_existing_organization(self, organization):
        run("create_api_key", "--organization", organization.name, "--scopes", "calls:read")
        assert Organization.objects.filter(name=organization.name).count() == 1
        assert organization.api_keys.count() == 1

    def test_all_scopes(self, db):
        from accounts.models import ALL_SCOPES

        run("create_api_key", "--organization", "Acme", "--scopes", "all")
        assert sorted(APIKey.objects.get().scopes) == sorted(ALL_SCOPES)

    @pytest.mark.parametrize("scopes", ["calls:read,calls:delete", "admin", "calls:*"])
    def test_unknown_scope_is_command_error_and_creates_nothing(self, db, scopes):
        with pytest.raises(CommandError, match="Unknown scope"):
            run("create_api_key", "--organization", "Acme", "--scopes", scopes)
        assert APIKey.objects.count() == 0
        assert not Organization.objects.filter(name="Acme").exists()

    def test_no_scope_is_command_error(self, db):
        with pytest.raises(CommandError):
            run("create_api_key", "--organization", "Acme", "--scopes", " , ")
        assert APIKey.objects.count() == 0


def counts() -> dict:
    return {
        model.__name__: model.objects.count()
        for model in (Organization, APIKey, Assistant, KnowledgeEntry, Widget, WidgetOrigin)
    }


@pytest.mark.django_db
class TestDemoSetup:
    def test_first_run_creates_demo_data_and_prints_a_working_key(self, client_with_key):
        output = run("demo_setup")

        assert counts() == {
            "Organization": 1,
            "APIKey": 1,
            "Assistant": 1,
            "KnowledgeEntry": 6,
            "Widget": 1,
            "WidgetOrigin": 1,
        }
        widget = Widget.objects.get()
        assert widget.allowed_origin_list == ["http://127.0.0.1:8000"]
        assert widget.assistant == Assistant.objects.get()
        [key_line] = [line for line in output.splitlines() if "API key (shown once" in line]
        key = key_line.rsplit(" ", 1)[-1]
        assert client_with_key(key).get("/v1/widgets").status_code == 200

    def test_second_run_creates_nothing_and_prints_no_key(self, db):
        run("demo_setup")
        before = counts()
        prefixes = set(APIKey.objects.values_list("prefix", flat=True))

        output = run("demo_setup")

        assert counts() == before
        assert "vwk_" not in output
        assert "shown once" not in output
        assert set(APIKey.objects.values_list("prefix", flat=True)) == prefixes
