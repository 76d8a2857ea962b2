from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from accounts.api import MAX_OFFSET, StrictSerializerMixin
from accounts.fields import FreeFormObjectField
from assistants.models import (
    BRAIN_PROVIDERS,
    DEFAULT_SPEECH,
    STT_PROVIDERS,
    TTS_PROVIDERS,
    VAD_PROVIDERS,
    Assistant,
)
from voice.providers.options import TENANT_ROLES, check_options, is_networked, schema

PROVIDERS = {
    "vad": VAD_PROVIDERS,
    "stt": STT_PROVIDERS,
    "brain": BRAIN_PROVIDERS,
    "tts": TTS_PROVIDERS,
}
SECRET_OPTION_WORDS = ("key", "secret", "token", "password")
MASK = "********"
MAX_KNOWLEDGE_ENTRIES = 500


def is_secret_option(name: str) -> bool:
    return any(word in name.lower() for word in SECRET_OPTION_WORDS)


def masked_speech(speech: dict) -> dict:
    """Provider settings as shown by the API: credentials never leave the server.

    Tenants can no longer send credentials, but options stored before that rule may hold
    some: anything secret-looking is masked, except the declared tenant options (such as
    ``max_tokens``), which are plain settings."""
    shown = {}
    for stage, setting in (speech or {}).items():
        declared = schema(stage, setting.get("provider")) or {}
        options = {
            name: (
                MASK
                if value
                and is_secret_option(name)
                and getattr(declared.get(name), "role", None) not in TENANT_ROLES
                else value
            )
            for name, value in (setting.get("options") or {}).items()
        }
        shown[stage] = {"provider": setting.get("provider"), "options": options}
    return shown


class KnowledgeEntrySerializer(StrictSerializerMixin, serializers.Serializer):
    question = serializers.CharField(max_length=500)
    answer = serializers.CharField(max_length=2000)


class SpeechField(serializers.JSONField):
    """{"vad"|"stt"|"brain"|"tts": {"provider": NAME, "options": {...}}}, merged over the current.

    Options are checked against the provider's declared schema (voice.providers.options):
    tenants set identity and tuning options within their bounds; server paths, process
    settings, URLs and credentials are the operator's, and networked providers name one of
    the operator's endpoints (VOICE_ENDPOINTS).  Errors name the option:
    ``speech.tts.options.volume``.
    """

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                "Must be an object keyed by stage (vad, stt, brain, tts)."
            )
        unknown = sorted(set(data) - set(PROVIDERS))
        if unknown:
            raise serializers.ValidationError(f"Unknown stage(s): {', '.join(unknown)}.")
        cleaned = {}
        for stage, setting in data.items():
            if not isinstance(setting, dict) or set(setting) - {"provider", "options"}:
                raise serializers.ValidationError(
                    f"{stage} must be an object with `provider` and optional `options`."
                )
            provider = setting.get("provider", DEFAULT_SPEECH[stage]["provider"])
            if provider not in PROVIDERS[stage]:
                raise serializers.ValidationError(
                    {stage: {"provider": f"Must be one of: {', '.join(PROVIDERS[stage])}."}}
                )
            options = setting.get("options", {})
            if not isinstance(options, dict):
                raise serializers.ValidationError({stage: {"options": "Must be an object."}})
            cleaned[stage] = {
                "provider": provider,
                "options": _speech_options(stage, provider, options),
            }
        return cleaned

    def to_representation(self, value):
        return masked_speech(value)


def _speech_options(stage: str, provider: str, options: dict) -> dict:
    """The options, checked; a ValidationError nested as {stage: {"options": {name: ...}}},
    which the error envelope names ``speech.<stage>.options.<name>``."""
    valid, errors = check_options(stage, provider, options)
    endpoints = settings.VOICE_ENDPOINTS
    if is_networked(stage, provider):
        if not endpoints:
            raise serializers.ValidationError(
                {stage: {"provider": "Needs a speech endpoint; this server configures none."}}
            )
        name = valid.get("endpoint")
        if name is not None and name not in endpoints:
            errors["endpoint"] = f"Unknown endpoint {name!r} (configured: {', '.join(endpoints)})."
    if errors:
        raise serializers.ValidationError(
            {
                stage: {
                    "options": {name: [why[:1].upper() + why[1:]] for name, why in errors.items()}
                }
            }
        )
    return valid


class AssistantSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    speech = SpeechField(required=False)
    knowledge = KnowledgeEntrySerializer(many=True, required=False)
    # Stored as given, so bounded: keys, key length, depth and size (accounts.fields).
    voice_settings = FreeFormObjectField(required=False)
    dtmf_rules = FreeFormObjectField(required=False)
    endpoint_silence_ms = serializers.IntegerField(min_value=100, max_value=3000, required=False)
    min_interruption_ms = serializers.IntegerField(min_value=0, max_value=3000, required=False)
    max_call_seconds = serializers.IntegerField(min_value=10, max_value=4 * 3600, required=False)
    silence_timeout_seconds = serializers.IntegerField(min_value=5, max_value=3600, required=False)
    language = serializers.RegexField(
        r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$", max_length=16, required=False
    )

    class Meta:
        model = Assistant
        fields = [
            "id",
            "name",
            "system_prompt",
            "description",
            "starting_message",
            "enabled",
            "language",
            "voice_settings",
            "dtmf_rules",
            "speech",
            "fallback_message",
            "endpoint_silence_ms",
            "min_interruption_ms",
            "max_call_seconds",
            "silence_timeout_seconds",
            "knowledge",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_knowledge(self, value):
        if len(value) > MAX_KNOWLEDGE_ENTRIES:
            raise serializers.ValidationError(f"At most {MAX_KNOWLEDGE_ENTRIES} entries.")
        return value

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["knowledge"] = [
            {"question": e.question, "answer": e.answer} for e in instance.knowledge.all()
        ]
        return data


class AssistantListQuery(StrictSerializerMixin, serializers.Serializer):
    enabled = serializers.BooleanField(required=False, allow_null=True, default=None)
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, required=False)
