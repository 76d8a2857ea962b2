"""Call events: recorded by the services in the change's transaction, numbered per call,
published after commit to the call's and the organization's groups, one `call.ended` per call."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from calls import events, services
from calls.models import Call, CallEvent
from calls.vocabulary import CallStatus, EndReason, EventType

pytestmark = pytest.mark.django_db(transaction=True)


def types(call: Call) -> list[str]:
    return list(CallEvent.objects.filter(call=call).order_by("seq").values_list("type", flat=True))


def test_a_call_records_created_started_lines_and_one_ended_in_order(organization, assistant):
    call, _ = services.call_create(organization=organization, assistant=assistant)
    services.call_start(call=call, transport="websocket")
    services.transcript_append(call_id=call.id, role="assistant", text="Hello!")
    services.transcript_append(call_id=call.id, role="user", text="When are you open?")
    assert services.call_end(call_id=call.id, reason=EndReason.HANGUP)
    assert not services.call_end(call_id=call.id, reason=EndReason.ERROR)  # already ended

    assert types(call) == [
        EventType.CALL_CREATED,
        EventType.CALL_STATUS_CHANGED,
        EventType.CALL_STARTED,
        EventType.TRANSCRIPT_FINAL,
        EventType.TRANSCRIPT_FINAL,
        EventType.CALL_STATUS_CHANGED,
        EventType.CALL_ENDED,
    ]
    seqs = list(CallEvent.objects.filter(call=call).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, 8))
    ended = CallEvent.objects.get(call=call, type=EventType.CALL_ENDED)
    assert ended.organization_id == organization.id
    assert ended.payload["status"] == CallStatus.COMPLETED
    assert ended.payload["end_reason"] == "hangup"
    assert ended.payload["duration"] is not None and ended.payload["duration"] >= 0
    assert "user: When are you open?" in ended.payload["transcript_excerpt"]
    assert ended.payload["recording_url"] is None
    changes = CallEvent.objects.filter(call=call, type=EventType.CALL_STATUS_CHANGED)
    assert [(e.payload["from"], e.payload["to"]) for e in changes] == [
        ("queued", "in_progress"),
        ("in_progress", "completed"),
    ]


def test_an_error_reason_ends_the_call_failed_with_one_ended_event(organization, assistant):
    call, _ = services.call_create(organization=organization, assistant=assistant)
    services.call_start(call=call, transport="websocket")
    services.call_end(call_id=call.id, reason=EndReason.ERROR)
    services.call_end(call_id=call.id, reason=EndReason.HANGUP)
    call.refresh_from_db()
    assert call.status == CallStatus.FAILED and call.end_reason == "error"
    assert types(call).count(EventType.CALL_ENDED) == 1


def test_call_start_twice_records_one_start(organization, assistant):
    call, _ = services.call_create(organization=organization, assistant=assistant)
    assert services.call_start(call=call, transport="websocket")
    assert not services.call_start(call=call, transport="websocket")
    assert types(call).count(EventType.CALL_STARTED) == 1


def test_a_rolled_back_change_records_and_publishes_nothing(organization, assistant):
    published = []

    def receiver(sender, event, **kwargs):
        transaction.on_commit(lambda: published.append(event.type))

    events.event_recorded.connect(receiver)
    try:
        with pytest.raises(RuntimeError), transaction.atomic():
            services.call_create(organization=organization, assistant=assistant)
            raise RuntimeError("boom")
    finally:
        events.event_recorded.disconnect(receiver)
    assert not CallEvent.objects.exists()
    assert not Call.objects.exists()
    assert published == []


def test_subscribers_inside_the_transaction_see_each_event_once(organization, assistant):
    received = []

    def receiver(sender, event, **kwargs):
        assert not transaction.get_autocommit()  # inside the recording transaction
        received.append((event.type, event.seq))

    events.event_recorded.connect(receiver)
    try:
        call, _ = services.call_create(organization=organization, assistant=assistant)
        services.call_end(call_id=call.id, reason=EndReason.NEVER_CONNECTED)
    finally:
        events.event_recorded.disconnect(receiver)
    assert received == [
        (EventType.CALL_CREATED, 1),
        (EventType.CALL_STATUS_CHANGED, 2),
        (EventType.CALL_ENDED, 3),
    ]


def test_event_record_outside_a_transaction_is_refused(organization, assistant):
    call, _ = services.call_create(organization=organization, assistant=assistant)
    with pytest.raises(RuntimeError, match="inside the transaction"):
        events.event_record(call=call, type=EventType.CALL_STARTED, payload={})


def test_committed_events_reach_the_call_and_organization_groups(organization, assistant):
    layer = get_channel_layer()

    async def subscribe(group: str) -> str:
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        return channel

    org_channel = async_to_sync(subscribe)(events.organization_group(organization.id))
    call, _ = services.call_create(organization=organization, assistant=assistant)
    call_channel = async_to_sync(subscribe)(events.call_group(call.id))
    services.transcript_append(call_id=call.id, role="user", text="Hi")

    async def drain(channel: str) -> list[dict]:
        got = []
        while True:
            try:
                got.append(await asyncio.wait_for(layer.receive(channel), 0.2))
            except TimeoutError:
                return got

    org_messages = async_to_sync(drain)(org_channel)
    call_messages = async_to_sync(drain)(call_channel)
    assert [m["event"]["type"] for m in org_messages] == ["call.created", "transcript.final"]
    assert [m["event"]["type"] for m in call_messages] == ["transcript.final"]
    line = call_messages[0]
    assert line["type"] == events.CHANNEL_MESSAGE_TYPE
    assert line["event"]["data"]["text"] == "Hi" and line["event"]["seq"] == 2
    assert line["event"]["call_id"] == call.id
