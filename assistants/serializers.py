from __future__ import annotations

import re

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api import MAX_OFFSET, StrictSerializerMixin
from accounts.fields import FreeFormObjectField, StrictBooleanField, StrictCharField
from assistants.models import (
    ANALYZERS,
    BRAIN_PROVIDERS,
    DATA_TYPES,
    DEFAULT_SPEECH,
    DTMF_KEYS,
    DTMF_RULE_ACTIONS,
    DTMF_TEXT_MAX,
    STT_PROVIDERS,
    TTS_PROVIDERS,
    VAD_PROVIDERS,
    Assistant,
    analysis_plan_of,
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
MAX_ALTERNATIVES = 20  # per knowledge entry
MAX_ALTERNATIVE_LENGTH = 300
# In all, so that the largest valid body stays under DATA_UPLOAD_MAX_MEMORY_SIZE.
MAX_ALTERNATIVES_TOTAL = 1000


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
    alternatives = serializers.ListField(
        child=StrictCharField(max_length=MAX_ALTERNATIVE_LENGTH),
        max_length=MAX_ALTERNATIVES,
        required=False,
        help_text="Other ways a caller may ask the question (the offline reply engine matches "
        f"them too); at most {MAX_ALTERNATIVES}, {MAX_ALTERNATIVE_LENGTH} characters each.",
    )


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


MAX_OUTCOMES = 20
MAX_DATA_FIELDS = 50
MAX_ENUM_VALUES = 50
DATA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class OutcomeSerializer(StrictSerializerMixin, serializers.Serializer):
    label = StrictCharField(max_length=64, help_text="e.g. `successful`, `Interested`.")
    description = StrictCharField(
        max_length=500,
        allow_blank=True,
        required=False,
        default="",
        help_text="When this outcome applies (the offline analyser matches its words).",
    )


class DataFieldSerializer(StrictSerializerMixin, serializers.Serializer):
    name = StrictCharField(max_length=64, help_text="An identifier: letters, digits, `_`.")
    type = serializers.ChoiceField(choices=DATA_TYPES)
    description = StrictCharField(max_length=500, allow_blank=True, required=False, default="")
    values = serializers.ListField(
        child=StrictCharField(max_length=100),
        required=False,
        max_length=MAX_ENUM_VALUES,
        help_text="The allowed values: required for `enum`, refused otherwise.",
    )

    def validate_name(self, value):
        if not DATA_NAME.match(value):
            raise serializers.ValidationError(
                "Must be an identifier: a letter or `_`, then letters, digits or `_`."
            )
        return value

    def validate(self, attrs):
        values = attrs.get("values")
        if attrs["type"] == "enum":
            if not values:
                raise serializers.ValidationError({"values": ["An enum needs its values."]})
            if len({v.lower() for v in values}) != len(values):
                raise serializers.ValidationError({"values": ["Values must be unique."]})
        elif values is not None:
            raise serializers.ValidationError({"values": ["Only an enum has values."]})
        return attrs


class AnalysisPlanSerializer(StrictSerializerMixin, serializers.Serializer):
    """What to work out from a call once it ended (`calls.analysis`)."""

    enabled = StrictBooleanField(required=False, default=True)
    summary = StrictBooleanField(required=False, default=True, help_text="Write a summary.")
    outcomes = OutcomeSerializer(many=True, required=False, default=list)
    data = DataFieldSerializer(many=True, required=False, default=list)
    analyzer = serializers.ChoiceField(
        choices=ANALYZERS,
        required=False,
        default="offline",
        help_text="`offline` (rules, no account) or `llm` (an OpenAI-compatible chat endpoint).",
    )
    endpoint = StrictCharField(
        max_length=64,
        required=False,
        help_text="`llm`: one of the server's VOICE_ENDPOINTS (omitted: the brain's, else the "
        "first).",
    )
    model = StrictCharField(max_length=100, required=False, help_text="`llm`: the chat model.")
    timeout = serializers.FloatField(
        min_value=1, max_value=120, required=False, help_text="`llm`: seconds (default 30)."
    )

    def validate_outcomes(self, value):
        if len(value) > MAX_OUTCOMES:
            raise serializers.ValidationError(f"At most {MAX_OUTCOMES} outcomes.")
        labels = [o["label"].strip().lower() for o in value]
        if len(set(labels)) != len(labels) or not all(labels):
            raise serializers.ValidationError("Labels must be unique and not blank.")
        return value

    def validate_data(self, value):
        if len(value) > MAX_DATA_FIELDS:
            raise serializers.ValidationError(f"At most {MAX_DATA_FIELDS} fields.")
        names = [d["name"] for d in value]
        if len(set(names)) != len(names):
            raise serializers.ValidationError("Names must be unique.")
        return value

    def validate_timeout(self, value):
        if isinstance(value, bool) or not isinstance(self.initial_data.get("timeout"), int | float):
            raise serializers.ValidationError("A number is required.")
        return value

    def validate(self, attrs):
        endpoints = settings.VOICE_ENDPOINTS
        if attrs.get("analyzer") == "llm" and not endpoints:
            raise serializers.ValidationError(
                {"analyzer": ["`llm` needs a chat endpoint; this server configures none."]}
            )
        name = attrs.get("endpoint")
        if name is not None and name not in endpoints:
            known = ", ".join(endpoints) or "none"
            raise serializers.ValidationError(
                {"endpoint": [f"Unknown endpoint {name!r} (configured: {known})."]}
            )
        return attrs


def _list_shaped(errors):
    """Nested list errors as lists (named ``data[1].values`` by the envelope, as
    ``knowledge[0].answer`` is), and a nested object's own errors as its field's."""
    if isinstance(errors, dict):
        if errors and all(isinstance(key, int) for key in errors):
            shaped = [{} for _ in range(max(errors) + 1)]
            for key, value in errors.items():
                shaped[key] = _list_shaped(value)
            return shaped
        if set(errors) == {"non_field_errors"}:
            return _list_shaped(errors["non_field_errors"])
        return {key: _list_shaped(value) for key, value in errors.items()}
    if isinstance(errors, list):
        return [_list_shaped(value) for value in errors]
    return errors


@extend_schema_field(AnalysisPlanSerializer)
class AnalysisPlanField(serializers.JSONField):
    """The analysis plan, replaced whole when sent (omitted keys take their defaults); a bad
    sub-field is a 400 naming it (``analysis_plan.data[1].values``)."""

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be an object.")
        plan = AnalysisPlanSerializer(data=data)
        if not plan.is_valid():
            raise serializers.ValidationError(_list_shaped(plan.errors))
        value = dict(plan.validated_data)
        value["outcomes"] = [dict(o) for o in value["outcomes"]]
        value["data"] = [
            {k: v for k, v in dict(d).items() if k != "values" or d["type"] == "enum"}
            for d in value["data"]
        ]
        return value

    def to_representation(self, value):
        return analysis_plan_of(value)


class AssistantSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    speech = SpeechField(required=False)
    analysis_plan = AnalysisPlanField(required=False)
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
            "goodbye_message",
            "endpoint_silence_ms",
            "min_interruption_ms",
            "max_call_seconds",
            "silence_timeout_seconds",
            "analysis_plan",
            "knowledge",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_dtmf_rules(self, value):
        """Free-form (seed 002), but a rule the phone acts on (a key with an ``action``) must
        be one it can act on: a 400 names the key and the field."""
        for key, rule in (value or {}).items():
            if not (isinstance(rule, dict) and "action" in rule):
                continue
            if len(key) != 1 or key not in DTMF_KEYS:
                raise serializers.ValidationError(
                    {key: f"A DTMF key is one of {' '.join(DTMF_KEYS)}."}
                )
            if rule["action"] not in DTMF_RULE_ACTIONS:
                raise serializers.ValidationError(
                    {key: {"action": f"One of: {', '.join(DTMF_RULE_ACTIONS)}."}}
                )
            text = rule.get("text", "")
            if not isinstance(text, str) or len(text) > DTMF_TEXT_MAX:
                raise serializers.ValidationError(
                    {key: {"text": f"A string of at most {DTMF_TEXT_MAX} characters."}}
                )
            if rule["action"] == "say" and not text.strip():
                raise serializers.ValidationError({key: {"text": "Required for `say`."}})
        return value

    def validate_knowledge(self, value):
        if len(value) > MAX_KNOWLEDGE_ENTRIES:
            raise serializers.ValidationError(f"At most {MAX_KNOWLEDGE_ENTRIES} entries.")
        if sum(len(e.get("alternatives", ())) for e in value) > MAX_ALTERNATIVES_TOTAL:
            raise serializers.ValidationError(
                f"At most {MAX_ALTERNATIVES_TOTAL} alternatives in all entries together."
            )
        return value

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["knowledge"] = [
            {"question": e.question, "answer": e.answer, "alternatives": list(e.alternatives)}
            for e in instance.knowledge.all()
        ]
        return data


class AssistantListQuery(StrictSerializerMixin, serializers.Serializer):
    enabled = serializers.BooleanField(required=False, allow_null=True, default=None)
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, required=False)
