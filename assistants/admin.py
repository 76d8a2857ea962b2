from __future__ import annotations

from django import forms
from django.contrib import admin
from rest_framework.exceptions import ValidationError as ApiValidationError

from accounts.admin_scoping import OrganizationScopedAdmin
from accounts.errors import validation_message
from assistants.models import Assistant, KnowledgeEntry, default_speech
from assistants.serializers import AssistantSerializer, KnowledgeEntrySerializer
from assistants.services import merge_speech

# The admin validates these free-form fields exactly as the API does.
API_VALIDATED_FIELDS = ("speech", "voice_settings", "dtmf_rules", "analysis_plan")


class AssistantAdminForm(forms.ModelForm):
    class Meta:
        model = Assistant
        fields = list(API_VALIDATED_FIELDS)  # the admin adds its fieldsets

    def clean(self):
        cleaned = super().clean()
        api_fields = AssistantSerializer().fields
        for name in API_VALIDATED_FIELDS:
            if name not in cleaned:
                continue
            try:
                value = api_fields[name].run_validation(cleaned[name])
            except ApiValidationError as exc:
                self.add_error(name, validation_message({name: exc.detail}))
                continue
            if name == "speech":  # every stage present, as the API stores it
                value = merge_speech(default_speech(), value)
            cleaned[name] = value
        return cleaned


class KnowledgeEntryForm(forms.ModelForm):
    """Alternatives are checked as the API checks them (a JSON list of short strings); left
    empty, there are none."""

    class Meta:
        model = KnowledgeEntry
        fields = ["position", "question", "answer", "alternatives"]

    def clean_alternatives(self):
        value = self.cleaned_data.get("alternatives")
        if value in (None, ""):
            return []
        field = KnowledgeEntrySerializer().fields["alternatives"]
        try:
            return field.run_validation(value)
        except ApiValidationError as exc:
            raise forms.ValidationError(validation_message({"alternatives": exc.detail})) from exc


class KnowledgeEntryInline(admin.TabularInline):
    model = KnowledgeEntry
    form = KnowledgeEntryForm
    extra = 1
    fields = ["position", "question", "answer", "alternatives"]


@admin.register(Assistant)
class AssistantAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    form = AssistantAdminForm
    list_display = ["name", "organization", "enabled", "language", "created_at"]
    list_filter = ["enabled", "organization"]
    search_fields = ["name", "description"]
    inlines = [KnowledgeEntryInline]
    fieldsets = [
        (None, {"fields": ["organization", "name", "description", "enabled", "language"]}),
        (
            "Conversation",
            {
                "fields": [
                    "system_prompt",
                    "starting_message",
                    "fallback_message",
                    "goodbye_message",
                ]
            },
        ),
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
        (
            "Analysis after the call",
            {
                "fields": ["analysis_plan"],
                "description": "JSON: enabled, summary, outcomes [{label, description}], "
                "data [{name, type, description, values}], analyzer offline|llm "
                "(with endpoint, model, timeout). See the README.",
            },
        ),
    ]
