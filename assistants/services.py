"""Writes for assistants."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import Organization
from assistants.models import Assistant, KnowledgeEntry, default_speech


class AssistantInUse(Exception):
    """The assistant has a live call and cannot be deleted."""


def merge_speech(current: dict, changes: dict) -> dict:
    """The stages sent replace the stored ones whole (provider and options); the others stay.

    Options arrive checked by ``SpeechField``: none of them is a credential any more
    (endpoints and keys are the operator's), so there is no masked value to restore.
    """
    merged = {stage: dict(setting) for stage, setting in (current or default_speech()).items()}
    for stage, setting in changes.items():
        merged[stage] = {"provider": setting["provider"], "options": dict(setting["options"])}
    return merged


def _replace_knowledge(assistant: Assistant, entries: list[dict]) -> None:
    assistant.knowledge.all().delete()
    KnowledgeEntry.objects.bulk_create(
        KnowledgeEntry(
            assistant=assistant,
            question=e["question"],
            answer=e["answer"],
            alternatives=list(e.get("alternatives", [])),
            position=i,
        )
        for i, e in enumerate(entries)
    )


@transaction.atomic
def assistant_create(*, organization: Organization, data: dict[str, Any]) -> Assistant:
    data = dict(data)
    knowledge = data.pop("knowledge", [])
    speech = merge_speech(default_speech(), data.pop("speech", {}))
    assistant = Assistant.objects.create(organization=organization, speech=speech, **data)
    _replace_knowledge(assistant, knowledge)
    return assistant


@transaction.atomic
def assistant_update(*, assistant: Assistant, data: dict[str, Any]) -> Assistant:
    data = dict(data)
    knowledge = data.pop("knowledge", None)
    if "speech" in data:
        assistant.speech = merge_speech(assistant.speech, data.pop("speech"))
    for field, value in data.items():
        setattr(assistant, field, value)
    assistant.save()
    if knowledge is not None:
        _replace_knowledge(assistant, knowledge)
    return assistant


@transaction.atomic
def assistant_delete(*, assistant: Assistant) -> None:
    # Lock the row so a call cannot start between the check and the delete.
    Assistant.objects.select_for_update().filter(pk=assistant.pk).first()
    if assistant.calls.live().exists():
        raise AssistantInUse("The assistant has a live call; end it before deleting.")
    assistant.delete()
