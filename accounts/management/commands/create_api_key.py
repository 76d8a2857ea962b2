"""Create an API key; the key alone is printed on the last line (shown only this once)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import ALL_SCOPES
from accounts.services import api_key_create, organization_get_or_create, scopes_validate


class Command(BaseCommand):
    help = "Create an API key for an organization (created if missing). Prints the key last."

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="Organization name")
        parser.add_argument(
            "--scopes",
            required=True,
            help=f"Comma-separated scopes, from: {','.join(ALL_SCOPES)} (or 'all')",
        )
        parser.add_argument("--name", default="CLI key", help="A name to recognise the key by")

    def handle(self, *args, organization: str, scopes: str, name: str, **options):
        requested = ALL_SCOPES if scopes.strip() == "all" else scopes.split(",")
        try:
            cleaned = scopes_validate(requested)
        except ValidationError as exc:
            raise CommandError(exc.messages[0]) from exc
        if not cleaned:
            raise CommandError("Give at least one scope.")
        org = organization_get_or_create(name=organization.strip())
        api_key, secret = api_key_create(organization=org, name=name, scopes=cleaned)
        self.stdout.write(
            f"Created API key {api_key.prefix}… for {org.name} with scopes {', '.join(cleaned)}. "
            "Store it now: it is not shown again."
        )
        self.stdout.write(secret)
