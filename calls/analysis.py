"""Post-call analysis: a summary, an outcome and typed data, worked out after `call.ended`.

The flow (rows are the truth, as everywhere in the backbone):

1. ``on_event_recorded`` (a `calls.events.event_recorded` receiver) runs inside the
   transaction that records `call.ended`: it marks the call's analysis ``pending`` (or
   ``disabled`` when the assistant's plan is off) and queues ``analyze_call`` after commit.
2. ``analyze_call`` claims the call with a conditional update (``pending`` ->
   ``processing``), so two workers never analyse it twice, analyses it, and stores the
   result (``ready``, or ``failed`` with the error) together with one `call.analyzed`
   event, in one transaction: webhooks get it with the result. A call with fewer than two
   caller turns is settled ``skipped`` (with the reason) at `call.ended`, without a job.
3. ``sweep`` (periodic) re-queues calls left ``pending`` (a lost queue message) or
   ``processing`` (a worker that died) for too long.

Two analysers read the same plan (`assistants.models.analysis_plan_of`) and their output is
checked against it the same way (``check_result``): nothing half-valid is stored.

- ``offline``: rules, no account, no model. Summary: what the caller first asked, what the
  assistant answered, how the call ended. Outcome: for each label, the share of the content
  words of "label + description" found in what happened, that is the caller's words (1 point
  each) and the words of how the call ended (half a point: "completed", "successful",
  "answered" for a completed call; "failed", "unsuccessful", "error" for a failed one; the end
  reason's words). Words are lower-cased and stemmed, and a word after a negation ("not
  interested") only matches a negated word. The best share wins (ties: the label listed
  first); no word in common with any label: no outcome. Data: each field is looked for in the
  caller's turns, most relevant first (turns that, with the assistant's question before them,
  share words with the field's name and description), with the spoken-form parsers of
  `calls.spoken`; emails, phone numbers and dates are also looked for in every other caller
  turn; not found: null.
- ``llm``: one request to the assistant's OpenAI-compatible chat endpoint with a JSON schema
  built from the plan (`response_format` `json_schema`); an invalid answer, an error status or
  a time-out fails the analysis with the reason.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

import jobs
from assistants.models import analysis_plan_of
from calls import spoken
from calls.events import event_record
from calls.models import Call, CallEvent
from calls.vocabulary import AnalysisStatus, CallStatus, EventType, Role

logger = logging.getLogger(__name__)

ANALYZE = "calls.analysis.analyze_call"
SWEEP_EVERY_SECONDS = 60
#: A pending analysis whose queue message should have run by now.
REQUEUE_AFTER = timedelta(minutes=2)
#: A processing analysis whose worker must have died (at least JOBS_TIMEOUT_SECONDS + 60 s:
#: jobs are killed after JOBS_TIMEOUT_SECONDS, and the llm request ends 10 s before that).
LEASE = timedelta(minutes=5)
MIN_USER_TURNS = 2
SKIPPED_TOO_SHORT = "Fewer than two caller turns: nothing to analyse."
#: The statuses `call.analyzed` announces: an analysis ran (skipped and disabled are settled
#: at `call.ended` without one).
ANNOUNCED = (AnalysisStatus.READY, AnalysisStatus.FAILED)
ERROR_CHARS = 500
DEFAULT_LLM_MODEL = "gpt-4o-mini"
DEFAULT_LLM_TIMEOUT = 30.0


class AnalysisError(Exception):
    """The analysis cannot be stored; the message says why (kept as `analysis_error`)."""


@dataclass(frozen=True)
class Line:
    role: str
    text: str


@dataclass(frozen=True)
class CallFacts:
    """What an analyser reads: the transcript and how the call ended."""

    lines: list[Line]
    status: str
    end_reason: str
    day: date
    duration: float | None = None

    @property
    def user_lines(self) -> list[Line]:
        return [line for line in self.lines if line.role == Role.USER and line.text.strip()]


# ------------------------------------------------------------------------------ the flow


def on_event_recorded(sender, *, event: CallEvent, **kwargs) -> None:
    """Inside the `call.ended` transaction: mark the analysis pending (or disabled) and queue
    it for after the commit."""
    if event.type != EventType.CALL_ENDED:
        return
    call = Call.objects.select_related("assistant").filter(pk=event.call_id).first()
    if call is None:
        return
    plan = analysis_plan_of(call.assistant.analysis_plan if call.assistant else None)
    if not plan["enabled"]:
        Call.objects.filter(pk=call.pk).update(
            analysis_status=AnalysisStatus.DISABLED, analysis_error="", analysis_at=None
        )
        return
    said = call.transcript.filter(role=Role.USER).exclude(text="").count()
    if said < MIN_USER_TURNS:
        # Nothing to analyse (most calls that never connected): settled now, no job, and no
        # `call.analyzed` (which announces an analysis that ran).
        Call.objects.filter(pk=call.pk).update(
            analysis_status=AnalysisStatus.SKIPPED,
            analysis_error=SKIPPED_TOO_SHORT,
            analysis_at=None,
        )
        return
    Call.objects.filter(pk=call.pk).update(
        analysis_status=AnalysisStatus.PENDING, analysis_error="", analysis_at=timezone.now()
    )
    jobs.enqueue_on_commit(ANALYZE, call.pk)


def claim(call_id: str, *, now: datetime) -> bool:
    """Take the analysis of an ended call: ``pending`` -> ``processing``, once."""
    return bool(
        Call.objects.filter(
            pk=call_id, analysis_status=AnalysisStatus.PENDING, ended_at__isnull=False
        ).update(analysis_status=AnalysisStatus.PROCESSING, analysis_at=now)
    )


def analyze_call(call_id: str) -> str:
    """The job: analyse one ended call if its analysis is pending. Returns the status stored,
    or "not pending" when there was nothing to do (already done, or another worker has it)."""
    now = timezone.now()
    if not claim(call_id, now=now):
        return "not pending"
    call = Call.objects.select_related("assistant").get(pk=call_id)
    plan = analysis_plan_of(call.assistant.analysis_plan if call.assistant else None)
    facts = call_facts(call)
    result: dict[str, Any] | None = None
    if not plan["enabled"]:  # switched off since the call ended
        status, error = AnalysisStatus.DISABLED, ""
    elif len(facts.user_lines) < MIN_USER_TURNS:
        status, error = AnalysisStatus.SKIPPED, SKIPPED_TOO_SHORT
    else:
        try:
            if plan["analyzer"] == "llm":
                raw = llm_analysis(plan, facts, call.assistant)
            else:
                raw = offline_analysis(plan, facts)
            result = check_result(plan, raw)
            status, error = AnalysisStatus.READY, ""
        except AnalysisError as exc:
            status, error = AnalysisStatus.FAILED, str(exc)
        except Exception:  # a bug: the call keeps a failed analysis, the details go to the log
            logger.exception("analysis of call %s failed", call_id)
            status, error = AnalysisStatus.FAILED, "Internal error while analysing the call."
    stored = analysis_store(
        call_id=call_id, claimed_at=now, status=status, result=result, error=error
    )
    return status if stored else "not pending"


def analysis_store(
    *,
    call_id: str,
    claimed_at: datetime,
    status: str,
    result: dict[str, Any] | None,
    error: str = "",
) -> bool:
    """Store the outcome and record `call.analyzed` in one transaction, if this claim still
    holds (the sweeper may have handed a stale claim to another worker)."""
    error = error[:ERROR_CHARS]
    with transaction.atomic():
        call = (
            Call.objects.select_for_update()
            .filter(pk=call_id, analysis_status=AnalysisStatus.PROCESSING, analysis_at=claimed_at)
            .first()
        )
        if call is None:
            return False
        call.analysis_status = status
        call.analysis = result
        call.analysis_error = error
        call.save(update_fields=["analysis_status", "analysis", "analysis_error", "updated_at"])
        if status not in ANNOUNCED:
            return True
        result = result or {}
        event_record(
            call=call,
            type=EventType.CALL_ANALYZED,
            payload={
                "call_id": call.id,
                "analysis_status": status,
                "summary": result.get("summary"),
                "outcome": result.get("outcome"),
                "extracted_data": result.get("extracted_data", {}),
                "error": error or None,
            },
        )
    return True


def _job_seconds() -> float:
    """How long the worker lets a job run (JOBS_TIMEOUT_SECONDS)."""
    return float(getattr(settings, "Q_CLUSTER", {}).get("timeout") or 60)


def sweep(*, now: datetime | None = None) -> list[str]:
    """Re-queue analyses left pending past REQUEUE_AFTER or processing past LEASE. Returns
    the call ids queued. Conditional updates: two sweepers never queue the same call twice."""
    now = now or timezone.now()
    queued = []
    stale = Call.objects.filter(
        analysis_status=AnalysisStatus.PENDING,
        ended_at__isnull=False,
        analysis_at__lt=now - REQUEUE_AFTER,
    ).values_list("pk", "analysis_at")
    for call_id, at in stale[:200]:
        if Call.objects.filter(pk=call_id, analysis_at=at).update(analysis_at=now):
            queued.append(call_id)
    lease = max(LEASE, timedelta(seconds=_job_seconds() + 60))
    dead = Call.objects.filter(
        analysis_status=AnalysisStatus.PROCESSING, analysis_at__lt=now - lease
    ).values_list("pk", "analysis_at")
    for call_id, at in dead[:200]:
        if Call.objects.filter(
            pk=call_id, analysis_status=AnalysisStatus.PROCESSING, analysis_at=at
        ).update(analysis_status=AnalysisStatus.PENDING, analysis_at=now):
            queued.append(call_id)
    for call_id in queued:
        jobs.enqueue(ANALYZE, call_id)
    return queued


def call_facts(call: Call) -> CallFacts:
    lines = [Line(e.role, e.text) for e in call.transcript.order_by("seq")]
    when = call.started_at or call.created_at or timezone.now()
    return CallFacts(
        lines=lines,
        status=call.status,
        end_reason=call.end_reason,
        day=timezone.localdate(when),
        duration=call.duration_seconds,
    )


# ------------------------------------------------------------------------------ checking


def _valid_date(value: str) -> bool:
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value))


def _check_value(field: dict[str, Any], value: Any) -> Any:
    """The value if it has the field's type (phone numbers normalised to their digits);
    raises AnalysisError naming the problem otherwise. None is always allowed."""
    kind = field["type"]
    if value is None:
        return None
    if kind in ("string", "enum", "date", "email", "phone") and not isinstance(value, str):
        raise AnalysisError(f"expected a {kind} as a string")
    if kind == "string":
        return value[:1000]
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        if value != value or value in (float("inf"), float("-inf")):
            raise AnalysisError("expected a finite number")
        return value
    if kind == "enum":
        if value in field["values"]:
            return value
        raise AnalysisError(f"{value[:40]!r} is not one of {', '.join(field['values'])}")
    if kind == "date":
        if _valid_date(value):
            return value
        raise AnalysisError("expected a date as YYYY-MM-DD")
    if kind == "email":
        if re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", value):
            return value.lower()
        raise AnalysisError("expected an email address")
    if kind == "phone":
        digits = ("+" if value.strip().startswith("+") else "") + re.sub(r"\D", "", value)
        if spoken.MIN_PHONE_DIGITS <= len(digits.lstrip("+")) <= spoken.MAX_PHONE_DIGITS:
            return digits
        raise AnalysisError("expected a phone number of 7 to 15 digits")
    raise AnalysisError(f"expected {'an' if kind == 'integer' else 'a'} {kind}")


def check_result(plan: dict[str, Any], result: Any) -> dict[str, Any]:
    """The analysis as stored: ``{"summary", "outcome", "extracted_data"}`` with exactly the
    plan's fields, each of its type or null. Raises AnalysisError naming what is wrong."""
    if not isinstance(result, dict):
        raise AnalysisError("Invalid analysis: expected a JSON object.")
    unknown = sorted(set(result) - {"summary", "outcome", "extracted_data"})
    if unknown:
        raise AnalysisError(f"Invalid analysis: unknown key {unknown[0][:40]!r}.")
    summary = result.get("summary")
    if summary is not None and not isinstance(summary, str):
        raise AnalysisError("Invalid analysis: summary: expected a string.")
    if not plan["summary"]:
        summary = None
    outcome = result.get("outcome")
    labels = [o["label"] for o in plan["outcomes"]]
    if outcome is not None and outcome not in labels:
        raise AnalysisError(
            f"Invalid analysis: outcome: {str(outcome)[:40]!r} is not one of the plan's labels."
        )
    data = result.get("extracted_data", {})
    if not isinstance(data, dict):
        raise AnalysisError("Invalid analysis: extracted_data: expected an object.")
    fields = {f["name"]: f for f in plan["data"]}
    extra = sorted(set(data) - set(fields))
    if extra:
        raise AnalysisError(f"Invalid analysis: extracted_data: unknown field {extra[0][:40]!r}.")
    extracted = {}
    for name, field in fields.items():
        try:
            extracted[name] = _check_value(field, data.get(name))
        except AnalysisError as exc:
            raise AnalysisError(f"Invalid analysis: extracted_data.{name}: {exc}.") from None
    return {
        "summary": summary[:2000] if summary else None,
        "outcome": outcome,
        "extracted_data": extracted,
    }


# ------------------------------------------------------------------------------ offline

STOP_WORDS = frozenset(
    """a an the and or but if of to in on at for with by from as is are was were be been am
    it its it's this that these those i i'm me my we our you your he she they them their
    there here what which who whom when where why how do does did so than then too very can
    could would should will shall may might must have has had just about into over also
    caller customer user assistant agent call person they're we're you're please okay ok
    oh um uh well like want wants get got any some""".split()
)
NEGATIONS = frozenset(
    """not no never don't dont doesn't didn't isn't wasn't won't can't cannot aren't
    wouldn't shouldn't nothing neither nor""".split()
)
END_WORDS = {
    CallStatus.COMPLETED: "completed success successful resolved answered done",
    CallStatus.FAILED: "failed failure unsuccessful error problem",
}
REASON_WORDS = {
    "hangup": "hung up hangup",
    "assistant_ended": "goodbye ended",
    "max_duration": "time limit long",
    "silence_timeout": "silence silent unresponsive",
    "client_gone": "disconnected dropped",
    "connection_lost": "disconnected dropped connection lost",
    "error": "error",
    "api_end": "ended",
    "canceled": "canceled cancelled",
}
ENDINGS = {
    "hangup": "when the caller hung up",
    "assistant_ended": "when the assistant said goodbye",
    "max_duration": "at its time limit",
    "silence_timeout": "after the caller went silent",
    "client_gone": "when the caller's connection went away",
    "connection_lost": "when the connection was lost",
    "error": "on a server error",
    "api_end": "when it was ended over the API",
    "canceled": "when it was canceled",
}
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def content_words(text: str, *, negation: bool = True) -> list[str]:
    """Stemmed content words; with ``negation``, the two words after "not", "don't", ... are
    marked ``not_`` (so "not interested" never matches "interested")."""
    out: list[str] = []
    negate = 0
    for token in _TOKEN.findall(text.lower().replace("\u2019", "'")):
        if negation and token in NEGATIONS:
            negate = 2
            continue
        if token in STOP_WORDS:
            continue
        word = stem(token)
        if negate:
            word = f"not_{word}"
            negate -= 1
        out.append(word)
    return out


def _quote(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def offline_summary(facts: CallFacts) -> str:
    users = facts.user_lines
    first = next((line for line in users if len(line.text.split()) >= 3), users[0])
    index = facts.lines.index(first)
    answer = next((line for line in facts.lines[index + 1 :] if line.role == Role.ASSISTANT), None)
    verb = "asked" if first.text.strip().endswith("?") else "said"
    parts = [f'The caller {verb}: "{_quote(first.text)}".']
    if answer is not None:
        parts.append(f'The assistant answered: "{_quote(answer.text)}".')
    ending = ENDINGS.get(facts.end_reason, f"({facts.end_reason or facts.status})")
    parts.append(
        f"The call ended {ending}, {facts.status}, after {len(users)} caller turns"
        + (f" and {round(facts.duration)} s." if facts.duration else ".")
    )
    return " ".join(parts)


def offline_outcome(plan: dict[str, Any], facts: CallFacts) -> str | None:
    said = set()
    for line in facts.user_lines:
        said.update(content_words(line.text))
    ending = set(content_words(END_WORDS.get(facts.status, ""), negation=False))
    ending.update(content_words(REASON_WORDS.get(facts.end_reason, ""), negation=False))
    best: tuple[float, str] | None = None
    for outcome in plan["outcomes"]:
        wanted = set(content_words(f"{outcome['label']} {outcome.get('description', '')}"))
        if not wanted:
            continue
        points = sum(1.0 if w in said else 0.5 if w in ending else 0.0 for w in wanted)
        share = points / len(wanted)
        if share > 0 and (best is None or share > best[0]):
            best = (share, outcome["label"])
    return best[1] if best else None


_FILLER = frozenset(
    """is are was were be to in for of the a an my it it's its that this i'm im i am called
    named about on at as with will would like sure yes yeah well so um uh just""".split()
)
_CLAUSE_END = re.compile(r"[.,;!?]|\band\b|\bbut\b|\bbecause\b|\bplease\b", re.IGNORECASE)
_RAW_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'@+.-]*[A-Za-z0-9]|[A-Za-z0-9]")
MAX_STRING_WORDS = 8


def _clean_phrase(text: str) -> str | None:
    """The words of ``text`` up to the end of its clause, leading filler dropped."""
    clause = _CLAUSE_END.split(text, maxsplit=1)[0]
    found = _RAW_WORD.findall(clause)
    while found and found[0].lower() in _FILLER:
        found.pop(0)
    return " ".join(found[:MAX_STRING_WORDS]) or None


def _string_after_cue(text: str, cues: set[str]) -> str | None:
    """The caller's words after the first word of the field's cue ("my name is Ada" -> "Ada")."""
    for match in _RAW_WORD.finditer(text):
        if stem(match.group(0).lower()) in cues:
            phrase = _clean_phrase(text[match.end() :])
            if phrase:
                return phrase
    return None


def _parser(field: dict[str, Any], day: date):
    kind = field["type"]
    return {
        "boolean": spoken.parse_boolean,
        "integer": spoken.parse_integer,
        "number": spoken.parse_number,
        "email": spoken.parse_email,
        "phone": spoken.parse_phone,
        "date": lambda text: found.isoformat() if (found := spoken.parse_date(text, day)) else None,
        "enum": lambda text: spoken.parse_enum(text, field["values"]),
    }.get(kind)


# Types a value of which is recognisable wherever the caller says it.
DISTINCTIVE = frozenset({"email", "phone", "date"})


def offline_extract(field: dict[str, Any], facts: CallFacts) -> Any:
    name_words = field["name"].replace("_", " ")
    cues = set(content_words(f"{name_words} {field.get('description', '')}", negation=False))
    turns: list[tuple[int, str, str]] = []  # (relevance, caller's text, question before it)
    question = ""
    for line in facts.lines:
        if line.role != Role.USER:
            question = line.text
            continue
        if not line.text.strip():
            continue
        own = cues & set(content_words(line.text, negation=False))
        asked = cues & set(content_words(question, negation=False))
        turns.append((len(own) * 2 + len(asked), line.text, question))
        question = ""
    relevant = sorted((t for t in turns if t[0] > 0), key=lambda t: -t[0])  # stable: earlier
    if field["type"] == "string":
        for _, text, asked in relevant:
            found = _string_after_cue(text, cues)
            if found is None and cues & set(content_words(asked, negation=False)):
                found = _clean_phrase(text)  # the answer to the assistant's question
            if found:
                return found
        return None
    parse = _parser(field, facts.day)
    candidates = list(relevant)
    if field["type"] in DISTINCTIVE:
        candidates += [t for t in turns if t[0] == 0]
    for _, text, _ in candidates:
        value = parse(text)
        if value is not None:
            return value
    return None


def offline_analysis(plan: dict[str, Any], facts: CallFacts) -> dict[str, Any]:
    return {
        "summary": offline_summary(facts) if plan["summary"] else None,
        "outcome": offline_outcome(plan, facts),
        "extracted_data": {field["name"]: offline_extract(field, facts) for field in plan["data"]},
    }


# ------------------------------------------------------------------------------ llm


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    schema = dict(schema)
    schema["type"] = [schema["type"], "null"]
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    return schema


def result_schema(plan: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema the model must answer with (OpenAI structured outputs, strict)."""
    properties: dict[str, Any] = {}
    hints = {
        "date": "A date as YYYY-MM-DD.",
        "email": "An email address.",
        "phone": "A phone number, digits only, with a leading + if given.",
    }
    for field in plan["data"]:
        kind = field["type"]
        base = {
            "string": "string",
            "boolean": "boolean",
            "integer": "integer",
            "number": "number",
        }.get(kind, "string")
        schema: dict[str, Any] = {"type": base}
        if kind == "enum":
            schema["enum"] = list(field["values"])
        description = " ".join(filter(None, [field.get("description", ""), hints.get(kind, "")]))
        if description:
            schema["description"] = description
        properties[field["name"]] = _nullable(schema)
    labels = [o["label"] for o in plan["outcomes"]]
    outcome: dict[str, Any] = {"type": "string"}
    if labels:
        outcome["enum"] = labels
    else:
        outcome = {"type": "null"}
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["summary", "outcome", "extracted_data"],
        "properties": {
            "summary": _nullable({"type": "string"}) if plan["summary"] else {"type": "null"},
            "outcome": _nullable(outcome) if labels else outcome,
            "extracted_data": {
                "type": "object",
                "additionalProperties": False,
                "required": list(properties),
                "properties": properties,
            },
        },
    }


def llm_messages(plan: dict[str, Any], facts: CallFacts) -> list[dict[str, str]]:
    outcomes = "\n".join(f"- {o['label']}: {o.get('description', '')}" for o in plan["outcomes"])
    instructions = (
        "You analyse the transcript of a finished voice call between a caller (user) and an "
        f"assistant. The call took place on {facts.day.isoformat()} and ended "
        f"{ENDINGS.get(facts.end_reason, facts.end_reason or facts.status)} "
        f"(status {facts.status}). Answer only with the JSON object the schema describes."
        + (
            " Write a short summary: what the caller wanted, what the assistant answered and "
            "how the call ended."
            if plan["summary"]
            else " The summary is null."
        )
        + (
            f" Choose the outcome among these labels, or null if none applies:\n{outcomes}"
            if plan["outcomes"]
            else ""
        )
        + " Extract each data field from what the caller said; null when not said. Resolve "
        "relative dates against the call's date."
    )
    transcript = "\n".join(f"{line.role}: {line.text}" for line in facts.lines)
    return [
        {"role": "system", "content": instructions},
        {"role": "user", "content": transcript},
    ]


def _llm_settings(plan: dict[str, Any], assistant) -> tuple[Any, str, float]:
    """(endpoint, model, timeout): the plan's, else the assistant's openai brain's, else the
    first configured endpoint and the defaults."""
    endpoints = settings.VOICE_ENDPOINTS
    brain = (assistant.speech or {}).get("brain", {}) if assistant is not None else {}
    brain_options = brain.get("options", {}) if brain.get("provider") == "openai" else {}
    name = plan.get("endpoint") or brain_options.get("endpoint") or next(iter(endpoints), None)
    endpoint = endpoints.get(name) if name else None
    if endpoint is None:
        raise AnalysisError(
            f"No chat endpoint {name!r} is configured (VOICE_ENDPOINTS)."
            if name
            else "No chat endpoint is configured (VOICE_ENDPOINTS)."
        )
    model = plan.get("model") or brain_options.get("model") or DEFAULT_LLM_MODEL
    # Within the job's own limit: a job killed mid-request would stay `processing` until
    # the sweeper's lease ran out, and then be killed again.
    timeout = min(float(plan.get("timeout") or DEFAULT_LLM_TIMEOUT), max(1.0, _job_seconds() - 10))
    return endpoint, model, timeout


def llm_analysis(plan: dict[str, Any], facts: CallFacts, assistant) -> dict[str, Any]:
    """One chat-completions request; the answer's JSON (checked by the caller)."""
    import httpx

    from netguard import URLRefused, guarded_client
    from voice.providers.openai_http import OpenAiEndpoint

    endpoint, model, timeout = _llm_settings(plan, assistant)
    body = {
        "model": model,
        "temperature": 0,
        "messages": llm_messages(plan, facts),
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "call_analysis", "strict": True, "schema": result_schema(plan)},
        },
    }
    try:
        target = OpenAiEndpoint(
            endpoint.base_url,
            endpoint.api_key,
            allow_private=endpoint.allow_private,
            name=endpoint.name,
            service="chat service",
        )
        with guarded_client(
            allow_http=target.base_url.startswith("http://"),
            allow_private=target.allow_private,
            timeout=timeout,
            headers=target.headers(),
        ) as client:
            response = client.post(target.url("chat/completions"), json=body)
    except httpx.TimeoutException:
        raise AnalysisError(f"The chat service timed out after {timeout:g} s.") from None
    except URLRefused as exc:
        raise AnalysisError(f"The chat endpoint was refused: {exc.reason}.") from None
    except Exception as exc:  # ProviderError (endpoint refused), connection errors
        raise AnalysisError(f"The chat service is unavailable ({type(exc).__name__}).") from None
    if response.status_code != 200:
        raise AnalysisError(f"The chat service returned HTTP {response.status_code}.")
    try:
        message = response.json()["choices"][0]["message"]
        content = message.get("content")
        if message.get("refusal") or not isinstance(content, str):
            raise AnalysisError("The model refused or gave no answer.")
        return json.loads(content)
    except AnalysisError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise AnalysisError(
            "Invalid analysis: the model's answer is not the JSON asked for."
        ) from None
