from __future__ import annotations

from django.contrib import admin

from accounts.admin_scoping import OrganizationScopedAdmin
from assistants.models import Assistant, KnowledgeEntry


class KnowledgeEntryInline(admin.TabularInline):
    model = KnowledgeEntry
    extra = 1
    fields = ["position", "question", "answer"]


@admin.register(Assistant)
class AssistantAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    list_display = ["name", "organization", "enabled", "language", "created_at"]
    list_filter = ["enabled", "organization"]
    search_fields = ["name", "description"]
    inlines = [KnowledgeEntryInline]
    fieldsets = [
        (None, {"fields": ["organization", "name", "description", "enabled", "language"]}),
        ("Conversation", {"fields": ["system_prompt", "starting_message", "fallback_message"]}),
        (
            "Speech",
            {
                "fields": [
                    "speech",
                    "voice_settings",
                    "dtmf_rules",
                    "endpoint_silence_ms",
                    "min_interruption_ms",
                    "max_call_seconds",
                    "silence_timeout_seconds",
                ]
            },
        ),
    ]
