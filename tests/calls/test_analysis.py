"""Post-call analysis (`calls.analysis`): the offline analyser on transcript fixtures for every
field type, every status, the job's claim and sweeper, `call.analyzed` as an event and a
webhook, and the llm analyser against a local OpenAI-compatible fake."""

from __future__ import annotations

import asyncio
import json
import threading
from contextlib import contextmanager
from datetime import date, timedelta

import pytest
from django.utils import timezone

import jobs
from assistants.models import Assistant
from calls import analysis, services
from calls.analysis import CallFacts, Line, check_result, offline_analysis
from calls.models import Call, CallEvent
from calls.vocabulary import AnalysisStatus, EventType
from tests.voice.fake_openai import FakeOpenAi, respond
from tests.webhooks.fixtures import *  # noqa: F403 (loopback webhooks, make_endpoint)
from tests.webhooks.receiver import Receiver
from voice.providers.openai_http import parse_endpoints

CALL_DAY = date(2026, 12, 1)  # a Tuesday

SALES = [
    ("assistant", "Hi, this is Acme. How can I help?"),
    ("user", "Hi, my name is Ada Lovelace and I'd like to book a demo of the premium plan."),
    ("assistant", "Great. What's the best email to reach you?"),
    ("user", "ada at example dot com"),
    ("assistant", "And a phone number?"),
    ("user", "five five five one two three four"),
    ("assistant", "How many seats do you need?"),
    ("user", "twenty five seats"),
    ("assistant", "What budget per seat do you have in mind?"),
    ("user", "about twelve point five dollars"),
    ("assistant", "When would suit you for the demo?"),
    ("user", "next Tuesday works"),
    ("assistant", "Would you like a callback before then?"),
    ("user", "Yes please."),
    ("assistant", "Booked. Goodbye!"),
]
NOT_INTERESTED = [
    ("assistant", "Hi, this is Acme. Can I tell you about our premium plan?"),
    ("user", "No, I'm not interested, thanks."),
    ("assistant", "No problem. Would you like a callback later?"),
    ("user", "No thanks."),
]
SUPPORT = [
    ("assistant", "Hello! How can I help?"),
    ("user", "When are you open on Saturday?"),
    ("assistant", "We are open from nine to five."),
    ("user", "Great, thanks, that answers my question."),
]
SALES_PLAN = {
    "enabled": True,
    "summary": True,
    "analyzer": "offline",
    "outcomes": [
        {"label": "Interested", "description": "The caller wants a demo or to buy"},
        {"label": "Not interested", "description": "The caller is not interested"},
    ],
    "data": [
        {"name": "full_name", "type": "string", "description": "The caller's full name"},
        {"name": "email", "type": "email", "description": "Email address to reach the caller"},
        {"name": "phone", "type": "phone", "description": "Phone number"},
        {"name": "seats", "type": "integer", "description": "Number of seats needed"},
        {"name": "budget", "type": "number", "description": "Budget per seat in dollars"},
        {"name": "demo_date", "type": "date", "description": "Date of the demo"},
        {"name": "callback", "type": "boolean", "description": "Whether a callback is wanted"},
        {
            "name": "plan",
            "type": "enum",
            "description": "The plan the caller asks about",
            "values": ["Basic", "Premium"],
        },
    ],
}
SALES_DATA = {
    "full_name": "Ada Lovelace",
    "email": "ada@example.com",
    "phone": "5551234",
    "seats": 25,
    "budget": 12.5,
    "demo_date": "2026-12-08",
    "callback": True,
    "plan": "Premium",
}
SUPPORT_PLAN = {
    "outcomes": [
        {"label": "successful", "description": "The caller's question was answered"},
        {"label": "unsuccessful", "description": "The question was not answered or it failed"},
    ],
    "data": [],
    "summary": True,
}


def facts(lines, *, status="completed", reason="hangup", day=CALL_DAY) -> CallFacts:
    return CallFacts(
        lines=[Line(role, text) for role, text in lines],
        status=status,
        end_reason=reason,
        day=day,
        duration=42.0,
    )


def plan_of(**changes) -> dict:
    from assistants.models import analysis_plan_of

    return analysis_plan_of(changes)


# ------------------------------------------------------------------------------ offline


def test_offline_analysis_extracts_every_field_type_from_spoken_answers():
    result = check_result(
        plan_of(**SALES_PLAN), offline_analysis(plan_of(**SALES_PLAN), facts(SALES))
    )

    assert result["extracted_data"] == SALES_DATA
    assert result["outcome"] == "Interested"


def test_offline_summary_says_what_was_asked_what_was_answered_and_how_it_ended():
    summary = offline_analysis(plan_of(**SUPPORT_PLAN), facts(SUPPORT))["summary"]

    assert summary.startswith('The caller asked: "When are you open on Saturday?".')
    assert 'The assistant answered: "We are open from nine to five."' in summary
    assert "ended when the caller hung up, completed, after 2 caller turns" in summary


def test_offline_summary_is_left_out_when_the_plan_says_so():
    plan = plan_of(**{**SUPPORT_PLAN, "summary": False})
    assert check_result(plan, offline_analysis(plan, facts(SUPPORT)))["summary"] is None


@pytest.mark.parametrize(
    "lines, plan, status, reason, expected",
    [
        (SALES, SALES_PLAN, "completed", "hangup", "Interested"),
        (NOT_INTERESTED, SALES_PLAN, "completed", "hangup", "Not interested"),
        (SUPPORT, SUPPORT_PLAN, "completed", "hangup", "successful"),
        (SUPPORT[:2], SUPPORT_PLAN, "failed", "error", "unsuccessful"),
        (SUPPORT, {"outcomes": []}, "completed", "hangup", None),
        (
            SUPPORT,
            {"outcomes": [{"label": "refund", "description": "wants money back"}]},
            "completed",
            "hangup",
            None,  # nothing in common: no outcome rather than a guess
        ),
    ],
    ids=["interested", "negated", "answered", "failed-call", "no-labels", "no-evidence"],
)
def test_offline_outcome_follows_the_words_of_the_call_and_how_it_ended(
    lines, plan, status, reason, expected
):
    plan = plan_of(**plan)
    result = offline_analysis(plan, facts(lines, status=status, reason=reason))
    assert check_result(plan, result)["outcome"] == expected


def test_offline_fields_not_said_are_null_and_a_negative_answer_is_false():
    result = offline_analysis(plan_of(**SALES_PLAN), facts(NOT_INTERESTED))["extracted_data"]

    assert result["callback"] is False
    # Only the assistant named a plan: the caller's words decide, so none.
    assert {k for k, v in result.items() if v is None} == {
        "plan",
        "full_name",
        "email",
        "phone",
        "seats",
        "budget",
        "demo_date",
    }


def test_offline_string_takes_the_answer_to_the_assistants_question():
    lines = [
        ("assistant", "Which city are you calling from?"),
        ("user", "Paris, France."),
        ("assistant", "Thanks."),
        ("user", "Bye."),
    ]
    plan = plan_of(data=[{"name": "city", "type": "string", "description": "The city"}])
    assert offline_analysis(plan, facts(lines))["extracted_data"] == {"city": "Paris"}


# ------------------------------------------------------------------------------ checking


@pytest.mark.parametrize(
    "result, message",
    [
        ([], "expected a JSON object"),
        ({"summary": 3}, "summary: expected a string"),
        ({"outcome": "Maybe"}, "outcome: 'Maybe' is not one of the plan's labels"),
        ({"extracted_data": {"nope": 1}}, "unknown field 'nope'"),
        ({"extracted_data": {"seats": "25"}}, "extracted_data.seats: expected an integer"),
        ({"extracted_data": {"seats": True}}, "extracted_data.seats: expected an integer"),
        ({"extracted_data": {"budget": "12"}}, "extracted_data.budget: expected a number"),
        ({"extracted_data": {"callback": "yes"}}, "extracted_data.callback: expected a boolean"),
        ({"extracted_data": {"plan": "Gold"}}, "extracted_data.plan: 'Gold' is not one of"),
        ({"extracted_data": {"demo_date": "next week"}}, "demo_date: expected a date"),
        ({"extracted_data": {"email": "ada"}}, "extracted_data.email: expected an email"),
        ({"extracted_data": {"phone": "12"}}, "extracted_data.phone: expected a phone"),
        ({"verdict": "x"}, "unknown key 'verdict'"),
    ],
)
def test_check_result_refuses_output_that_does_not_fit_the_plan_naming_it(result, message):
    with pytest.raises(analysis.AnalysisError, match=message.replace("(", r"\(")):
        check_result(plan_of(**SALES_PLAN), result)


def test_check_result_fills_missing_fields_with_null_and_normalises_phone_numbers():
    checked = check_result(
        plan_of(**SALES_PLAN), {"extracted_data": {"phone": "+1 (415) 555-2671"}}
    )
    assert checked["extracted_data"]["phone"] == "+14155552671"
    assert checked["extracted_data"]["seats"] is None
    assert checked["summary"] is None and checked["outcome"] is None


# ------------------------------------------------------------------------------ the flow


def end_call(organization, assistant, lines, reason="hangup") -> Call:
    """A call through the real services: created, started, its lines, ended (the analysis
    runs in-line after the commit: JOBS_SYNC)."""
    call, _ = services.call_create(organization=organization, assistant=assistant)
    services.call_start(call=call, transport="websocket")
    for role, text in lines:
        services.transcript_append(call_id=call.id, role=role, text=text)
    services.call_end(call_id=call.id, reason=reason)
    call.refresh_from_db()
    return call


def analyzed_events(call: Call) -> list[CallEvent]:
    return list(CallEvent.objects.filter(call=call, type=EventType.CALL_ANALYZED))


@pytest.mark.django_db(transaction=True)
def test_ended_call_is_analysed_ready_with_one_call_analyzed_event(
    api, organization, make_assistant
):
    assistant = make_assistant(analysis_plan=SALES_PLAN)
    call = end_call(organization, assistant, SALES)

    assert call.analysis_status == AnalysisStatus.READY
    # "next Tuesday" counts from the call's own day (today here): the first Tuesday after it.
    call_day = timezone.localdate(call.started_at)
    demo = call_day + timedelta(days=(1 - call_day.weekday()) % 7 or 7)
    assert call.analysis["extracted_data"] == {**SALES_DATA, "demo_date": demo.isoformat()}
    events = analyzed_events(call)
    assert len(events) == 1
    last = CallEvent.objects.filter(call=call).order_by("-seq").first()
    assert last.type == EventType.CALL_ANALYZED  # after call.ended
    assert events[0].payload["analysis_status"] == "ready"
    assert events[0].payload["outcome"] == "Interested"
    assert events[0].payload["extracted_data"]["email"] == "ada@example.com"

    body = api.get(f"/v1/calls/{call.id}/analysis").json()["data"]
    assert body["analysis_status"] == "ready"
    assert body["outcome"] == "Interested"
    assert body["summary"].startswith("The caller said:")
    assert body["extracted_data"]["seats"] == 25
    assert body["error"] is None
    detail = api.get(f"/v1/calls/{call.id}").json()["data"]
    assert detail["outcome"] == "Interested"
    assert detail["summary"] == body["summary"]
    assert detail["analysis_status"] == "ready"
    assert detail["transcript"].splitlines()[1] == f"user: {SALES[1][1]}"


@pytest.mark.django_db(transaction=True)
def test_the_job_is_claimed_once_running_it_again_changes_nothing(organization, make_assistant):
    call = end_call(organization, make_assistant(analysis_plan=SUPPORT_PLAN), SUPPORT)
    assert call.analysis_status == AnalysisStatus.READY

    assert analysis.analyze_call(call.id) == "not pending"
    assert analysis.claim(call.id, now=timezone.now()) is False
    assert len(analyzed_events(call)) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_for_one_pending_call_claim_it_once(organization, make_assistant):
    call = end_call(organization, make_assistant(analysis_plan=SUPPORT_PLAN), SUPPORT)
    Call.objects.filter(pk=call.pk).update(analysis_status=AnalysisStatus.PENDING)

    now = timezone.now()
    assert [analysis.claim(call.id, now=now), analysis.claim(call.id, now=now)] == [True, False]


@pytest.mark.django_db(transaction=True)
def test_a_call_with_fewer_than_two_caller_turns_is_skipped_with_the_reason(
    api, organization, make_assistant, monkeypatch
):
    queued = []
    monkeypatch.setattr(jobs, "enqueue", lambda *args: queued.append(args))
    call = end_call(organization, make_assistant(analysis_plan=SUPPORT_PLAN), SUPPORT[:2])

    assert call.analysis_status == AnalysisStatus.SKIPPED
    assert call.analysis_error == analysis.SKIPPED_TOO_SHORT
    assert not any(args[0] == analysis.ANALYZE for args in queued)  # no job for nothing
    assert analyzed_events(call) == []
    body = api.get(f"/v1/calls/{call.id}/analysis").json()["data"]
    assert body["analysis_status"] == "skipped"
    assert body["error"] == analysis.SKIPPED_TOO_SHORT
    assert body["summary"] is None


@pytest.mark.django_db(transaction=True)
def test_a_disabled_plan_leaves_the_call_disabled_without_a_job(organization, make_assistant):
    assistant = make_assistant(analysis_plan={**SUPPORT_PLAN, "enabled": False})
    call = end_call(organization, assistant, SUPPORT)

    assert call.analysis_status == AnalysisStatus.DISABLED
    assert call.analysis is None
    assert analyzed_events(call) == []


@pytest.mark.django_db(transaction=True)
def test_a_plan_switched_off_before_the_job_runs_leaves_the_call_disabled(
    organization, make_assistant
):
    assistant = make_assistant(analysis_plan=SUPPORT_PLAN)
    call = end_call(organization, assistant, SUPPORT)
    Call.objects.filter(pk=call.pk).update(analysis_status="pending", analysis=None)
    Assistant.objects.filter(pk=assistant.pk).update(analysis_plan={"enabled": False})

    assert analysis.analyze_call(call.id) == AnalysisStatus.DISABLED
    call.refresh_from_db()
    assert call.analysis_status == "disabled" and call.analysis is None
    assert len(analyzed_events(call)) == 1  # the first run's, none for this one


@pytest.mark.django_db(transaction=True)
def test_an_analyser_bug_fails_the_analysis_keeps_the_error_and_stores_no_result(
    organization, make_assistant, monkeypatch
):
    def broken(plan, facts):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(analysis, "offline_analysis", broken)
    call = end_call(organization, make_assistant(analysis_plan=SUPPORT_PLAN), SUPPORT)

    assert call.analysis_status == AnalysisStatus.FAILED
    assert call.analysis_error == "Internal error while analysing the call."
    assert call.analysis is None
    [event] = analyzed_events(call)
    assert event.payload["analysis_status"] == "failed"
    assert event.payload["error"] == call.analysis_error


@pytest.mark.django_db(transaction=True)
def test_call_analyzed_is_delivered_once_as_a_signed_webhook(
    organization, make_assistant, make_endpoint
):
    with Receiver() as receiver:
        endpoint, secret = make_endpoint(receiver.url, events=["call.analyzed"])
        receiver.secrets = [secret]
        call = end_call(organization, make_assistant(analysis_plan=SUPPORT_PLAN), SUPPORT)

    assert [r.json["type"] for r in receiver.received] == ["call.analyzed"]
    got = receiver.received[0]
    assert got.verified_by == [0]
    assert got.headers["webhook-id"] == analyzed_events(call)[0].id
    data = got.json["data"]
    assert data["call_id"] == call.id
    assert data["analysis_status"] == "ready"
    assert data["outcome"] == "successful"


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_requeues_stale_pending_and_abandoned_processing_analyses(
    organization, make_assistant
):
    assistant = make_assistant(analysis_plan=SUPPORT_PLAN)
    lost = end_call(organization, assistant, SUPPORT)
    dead = end_call(organization, assistant, SUPPORT)
    fresh = end_call(organization, assistant, SUPPORT)
    long_ago = timezone.now() - timedelta(hours=1)
    # A queue message that was lost, a worker killed mid-analysis, and one just queued.
    Call.objects.filter(pk=lost.pk).update(analysis_status="pending", analysis_at=long_ago)
    Call.objects.filter(pk=dead.pk).update(analysis_status="processing", analysis_at=long_ago)
    Call.objects.filter(pk=fresh.pk).update(analysis_status="pending", analysis_at=timezone.now())

    queued = analysis.sweep()

    assert sorted(queued) == sorted([lost.pk, dead.pk])
    statuses = dict(Call.objects.values_list("pk", "analysis_status"))
    assert statuses[lost.pk] == statuses[dead.pk] == "ready"  # JOBS_SYNC ran them
    assert statuses[fresh.pk] == "pending"
    assert analysis.sweep() == []


@pytest.mark.django_db(transaction=True)
def test_a_stale_claim_cannot_store_over_a_newer_one(organization, make_assistant):
    call = end_call(organization, make_assistant(analysis_plan=SUPPORT_PLAN), SUPPORT)
    Call.objects.filter(pk=call.pk).update(analysis_status="pending")
    old = timezone.now() - timedelta(hours=1)
    assert analysis.claim(call.id, now=old)
    assert analysis.sweep() == [call.id]  # re-queued and done by a new worker (in-line)

    assert not analysis.analysis_store(
        call_id=call.id, claimed_at=old, status="failed", result=None, error="late"
    )
    call.refresh_from_db()
    assert call.analysis_status == "ready" and call.analysis_error == ""


# ------------------------------------------------------------------------------ llm


@contextmanager
def fake_chat(handler):
    """FakeOpenAi (asyncio) served from its own thread: the analysis job is synchronous."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = FakeOpenAi(routes={"/v1/chat/completions": handler})
    asyncio.run_coroutine_threadsafe(fake.__aenter__(), loop).result(5)

    async def shutdown() -> None:
        await fake.__aexit__(None, None, None)
        # A slow answer still sleeping (the time-out test) is cancelled, not left behind.
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def completion(content: str) -> bytes:
    return json.dumps({"choices": [{"index": 0, "message": {"content": content}}]}).encode()


def answering(content: str, *, delay: float = 0.0, status: int = 200):
    async def handler(request, writer):
        if delay:
            await asyncio.sleep(delay)
        await respond(writer, status, completion(content))

    return handler


def llm_plan(**changes) -> dict:
    return {**SALES_PLAN, "analyzer": "llm", "model": "tiny", **changes}


@pytest.fixture
def endpoints(settings):
    def configure(base_url: str):
        raw = json.dumps({"local": {"base_url": base_url, "allow_private": True}})
        settings.VOICE_ENDPOINTS = parse_endpoints(raw, {})

    return configure


@pytest.mark.django_db(transaction=True)
def test_llm_analyser_sends_a_json_schema_from_the_plan_and_stores_the_checked_answer(
    organization, make_assistant, endpoints
):
    answer = {
        "summary": "Ada booked a demo.",
        "outcome": "Interested",
        "extracted_data": {**SALES_DATA, "phone": "555-1234"},
    }
    with fake_chat(answering(json.dumps(answer))) as fake:
        endpoints(fake.base_url)
        call = end_call(organization, make_assistant(analysis_plan=llm_plan()), SALES)

    assert call.analysis_status == "ready", call.analysis_error
    assert call.analysis == {**answer, "extracted_data": SALES_DATA}  # phone normalised
    [request] = fake.requests
    body = request.json()
    assert body["model"] == "tiny"
    schema = body["response_format"]["json_schema"]["schema"]
    data = schema["properties"]["extracted_data"]
    assert data["required"] == [f["name"] for f in SALES_PLAN["data"]]
    assert data["properties"]["seats"]["type"] == ["integer", "null"]
    assert data["properties"]["plan"]["enum"] == ["Basic", "Premium", None]
    assert schema["properties"]["outcome"]["enum"] == ["Interested", "Not interested", None]
    assert "user: ada at example dot com" in body["messages"][1]["content"]
    assert len(analyzed_events(call)) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "content, status, error",
    [
        (
            json.dumps({"summary": "x", "outcome": None, "extracted_data": {"seats": "25"}}),
            200,
            "Invalid analysis: extracted_data.seats: expected an integer.",
        ),
        (
            json.dumps({"summary": "x", "outcome": "Maybe", "extracted_data": {}}),
            200,
            "Invalid analysis: outcome: 'Maybe' is not one of the plan's labels.",
        ),
        ("this is not json", 200, "Invalid analysis: the model's answer is not the JSON"),
        ("{}", 500, "The chat service returned HTTP 500."),
    ],
    ids=["wrong-type", "unknown-label", "not-json", "http-500"],
)
def test_llm_analyser_fails_with_the_reason_on_invalid_output_and_stores_nothing(
    organization, make_assistant, endpoints, content, status, error
):
    with fake_chat(answering(content, status=status)) as fake:
        endpoints(fake.base_url)
        call = end_call(organization, make_assistant(analysis_plan=llm_plan()), SALES)

    assert call.analysis_status == "failed"
    assert call.analysis_error.startswith(error)
    assert call.analysis is None  # never half-stored
    [event] = analyzed_events(call)
    assert event.payload["error"] == call.analysis_error


@pytest.mark.django_db(transaction=True)
def test_llm_analyser_that_times_out_fails_the_analysis(organization, make_assistant, endpoints):
    with fake_chat(answering("{}", delay=3)) as fake:
        endpoints(fake.base_url)
        plan = llm_plan(timeout=1)
        call = end_call(organization, make_assistant(analysis_plan=plan), SALES)

    assert call.analysis_status == "failed"
    assert call.analysis_error == "The chat service timed out after 1 s."
    assert call.analysis is None


@pytest.mark.django_db(transaction=True)
def test_llm_analyser_without_a_configured_endpoint_fails_with_the_reason(
    organization, make_assistant, settings
):
    settings.VOICE_ENDPOINTS = {}
    call = end_call(organization, make_assistant(analysis_plan=llm_plan()), SALES)

    assert call.analysis_status == "failed"
    assert "No chat endpoint is configured" in call.analysis_error
