"""Create the demo organization, assistant, widget and API key when they do not exist."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from accounts.models import ALL_SCOPES, APIKey, Membership
from accounts.services import api_key_create, organization_get_or_create
from assistants.models import Assistant
from assistants.services import assistant_create
from widgets.models import Widget, WidgetOrigin
from widgets.services import widget_create
from widgets.views_pages import DEMO_ORGANIZATION

DEMO_KNOWLEDGE = [
    (
        "What are your opening hours?",
        "We are open from nine in the morning to six in the evening, Monday to Saturday.",
    ),
    ("Where is the shop?", "Our shop is at twelve Harbour Street, next to the central station."),
    (
        "Do you repair bikes?",
        "Yes, we repair all kinds of bikes. Most repairs are ready the next day.",
    ),
    (
        "How much does a bike rental cost?",
        "Renting a city bike costs fifteen euros a day, helmet included.",
    ),
    ("Do you deliver?", "We deliver new bikes free of charge within ten kilometres."),
    ("Can I return a bike?", "You can return a new bike within thirty days if it is unused."),
]


class Command(BaseCommand):
    help = "Create a demo organization, assistant, widget and API key if none exist."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://localhost:8000")
        parser.add_argument("--demo-origin", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url: str, demo_origin: str, **options):
        org = organization_get_or_create(name=DEMO_ORGANIZATION)
        assistant = Assistant.objects.filter(organization=org).first()
        if assistant is None:
            assistant = assistant_create(
                organization=org,
                data={
                    "name": "Acme Bikes assistant",
                    "system_prompt": "You are the friendly voice assistant of Acme Bikes, a bike shop.",
                    "description": "Answers questions about the shop",
                    "starting_message": "Hello! I'm the Acme Bikes assistant. How can I help you?",
                    "knowledge": [{"question": q, "answer": a} for q, a in DEMO_KNOWLEDGE],
                },
            )
            self.stdout.write(f"Created demo assistant {assistant.id}")
        widget = Widget.objects.filter(organization=org).order_by("created_at").first()
        if widget is None:
            widget = widget_create(
                organization=org,
                data={
                    "assistant": assistant,
                    "call_to_action": "Questions? Talk to Acme Bikes",
                    "allowed_origins": [demo_origin.lower()],
                },
            )
            self.stdout.write(f"Created demo widget {widget.id}")
        elif not widget.origin_allowed(demo_origin):
            WidgetOrigin.objects.create(widget=widget, origin=demo_origin.lower(), position=99)
            self.stdout.write(f"Allowed {demo_origin} on the demo widget")
        password = None
        User = get_user_model()
        if not User.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            admin = User.objects.create_superuser("admin", password=password)
            Membership.objects.create(user=admin, organization=org)
        secret = None
        if not APIKey.objects.filter(organization=org, revoked_at__isnull=True).exists():
            _, secret = api_key_create(organization=org, name="Demo key", scopes=ALL_SCOPES)
        self.stdout.write("")
        self.stdout.write(
            f"  Demo host page : {demo_origin}/demo/ (embeds the widget from {base_url})"
        )
        if password:
            self.stdout.write(
                f"  Admin          : {base_url}/admin/  user admin, password {password} (shown once)"
            )
        else:
            self.stdout.write(f"  Admin          : {base_url}/admin/")
        self.stdout.write(f"  API reference  : {base_url}/v1/docs/")
        self.stdout.write(f"  Widget id      : {widget.id}   Assistant id: {assistant.id}")
        if secret:
            self.stdout.write(f"  API key (shown once, all scopes): {secret}")
        else:
            self.stdout.write(
                "  API key        : already created earlier (only its hash is kept); make another with\n"
                "                   .venv/bin/python manage.py create_api_key --organization Demo --scopes all"
            )
