from __future__ import annotations

from django.db import models

from accounts.ids import new_object_id
from accounts.models import Organization
from voice.config import DEFAULT_GOODBYE_MESSAGE

# The providers tenants may choose per stage; their options (types, bounds, which ones a
# tenant may set) are declared by the engine in voice.providers.options.
VAD_PROVIDERS = ("silero", "webrtc")
STT_PROVIDERS = ("faster-whisper", "openai")
BRAIN_PROVIDERS = ("knowledge", "openai")
TTS_PROVIDERS = ("piper", "espeak", "openai")

DEFAULT_SPEECH = {
    "vad": {"provider": "silero", "options": {}},
    "stt": {"provider": "faster-whisper", "options": {}},
    "brain": {"provider": "knowledge", "options": {}},
    "tts": {"provider": "piper", "options": {}},
}


# The post-call analysis plan (validated by assistants.serializers.AnalysisPlanField, run by
# calls.analysis): a summary, an outcome among `outcomes`' labels, typed `data` fields.
ANALYZERS = ("offline", "llm")
DATA_TYPES = ("string", "boolean", "integer", "number", "enum", "date", "email", "phone")


def default_analysis_plan() -> dict:
    return {
        "enabled": True,
        "summary": True,
        "outcomes": [],
        "data": [],
        "analyzer": "offline",
    }


def analysis_plan_of(stored: object) -> dict:
    """A stored plan with every key present (plans stored before a key existed get its
    default)."""
    plan = default_analysis_plan()
    if isinstance(stored, dict):
        plan.update({k: v for k, v in stored.items() if k in plan or k in LLM_PLAN_KEYS})
    return plan


#: The DTMF rules the phone runtime acts on: ``{"<key>": {"action": "say" | "end_call",
#: "text": "..."}}`` (``dtmf_rules`` is free-form in seed 002; other shapes are kept, unused).
DTMF_KEYS = "0123456789*#"
DTMF_RULE_ACTIONS = ("say", "end_call")
DTMF_TEXT_MAX = 500


def dtmf_rules_of(stored: object) -> dict[str, tuple[str, str]]:
    """The rules a call acts on: key -> (action, text), from the stored ``dtmf_rules``."""
    rules: dict[str, tuple[str, str]] = {}
    if not isinstance(stored, dict):
        return rules
    for key, rule in stored.items():
        if key not in DTMF_KEYS or len(key) != 1 or not isinstance(rule, dict):
            continue
        action, text = rule.get("action"), rule.get("text", "")
        if action in DTMF_RULE_ACTIONS and isinstance(text, str):
            rules[key] = (action, text[:DTMF_TEXT_MAX])
    return rules


# The llm analyzer's own settings (all optional): the endpoint's name in VOICE_ENDPOINTS
# (omitted: the brain's, else the first), the model, the request's time-out in seconds.
LLM_PLAN_KEYS = ("endpoint", "model", "timeout")


def default_speech() -> dict:
    return {
        stage: {"provider": s["provider"], "options": {}} for stage, s in DEFAULT_SPEECH.items()
    }


class Assistant(models.Model):
    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="assistants"
    )
    name = models.CharField(max_length=200)
    system_prompt = models.TextField(max_length=20000)
    description = models.TextField(blank=True, max_length=2000)
    starting_message = models.TextField(blank=True, max_length=2000)
    enabled = models.BooleanField(default=True)
    language = models.CharField(max_length=16, default="en")
    voice_settings = models.JSONField(default=dict, blank=True)
    dtmf_rules = models.JSONField(default=dict, blank=True)
    # Provider per stage with options: {"vad": {"provider": ..., "options": {...}}, ...}
    speech = models.JSONField(default=default_speech, blank=True)
    fallback_message = models.CharField(
        max_length=500, default="Sorry, I don't know that one. Could you ask another way?"
    )
    # Said before the assistant ends a call (the caller said goodbye, or POST .../end); blank:
    # end without one.
    goodbye_message = models.CharField(max_length=500, blank=True, default=DEFAULT_GOODBYE_MESSAGE)
    endpoint_silence_ms = models.PositiveIntegerField(default=500)
    min_interruption_ms = models.PositiveIntegerField(default=300)
    max_call_seconds = models.PositiveIntegerField(default=600)
    silence_timeout_seconds = models.PositiveIntegerField(default=30)
    analysis_plan = models.JSONField(default=default_analysis_plan, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class KnowledgeEntry(models.Model):
    """A question/answer pair the offline reply engine answers from."""

    assistant = models.ForeignKey(Assistant, on_delete=models.CASCADE, related_name="knowledge")
    question = models.CharField(max_length=500)
    answer = models.TextField(max_length=2000)
    # Other ways a caller may ask the question (strings; bounded by the API).
    alternatives = models.JSONField(default=list, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        verbose_name_plural = "knowledge entries"

    def __str__(self) -> str:
        return self.question
