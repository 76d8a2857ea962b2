"""Every way a call can end gives exactly one `call.ended` event, with the reason and status
the call row has: hang-up, the assistant ending it, the time limits, the client gone, a server
error, no hello, the reaper after a crash, and a token nobody used."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from calls import consumers, services
from calls.models import Call, CallEvent
from calls.vocabulary import CallStatus, EventType
from tests.calls.fakes import make_factory, silence, speech
from tests.calls.test_consumer import make_call, messages_until, open_socket, send_audio

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fake_voice(settings, tmp_path):
    settings.VOICE_PROVIDERS_FACTORY = make_factory()
    settings.MEDIA_ROOT = tmp_path


def ended_events(call_id: str) -> list[CallEvent]:
    return list(CallEvent.objects.filter(call_id=call_id, type=EventType.CALL_ENDED))


async def assert_ended_once(call_id: str, reason: str, status: str) -> None:
    # The last writes happen as the socket closes: give them a moment.
    for _ in range(100):
        call = await Call.objects.aget(pk=call_id)
        if call.is_terminal:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    events = await database_sync_to_async(ended_events)(call_id)
    assert len(events) == 1, [e.payload for e in events]
    assert (call.status, call.end_reason) == (status, reason)
    assert events[0].payload["end_reason"] == reason and events[0].payload["status"] == status


async def started_call(**assistant_fields):
    call, token = await database_sync_to_async(make_call)()
    if assistant_fields:
        await database_sync_to_async(
            lambda: (
                type(call.assistant).objects.filter(pk=call.assistant_id).update(**assistant_fields)
            )
        )()
    communicator = await open_socket(call, token)
    await communicator.send_json_to({"type": "hello", "audio": "websocket"})
    await messages_until(communicator, lambda m: m["type"] == "call.started")
    return call, communicator


async def test_hang_up_ends_completed_hangup_once():
    call, communicator = await started_call()
    await communicator.send_json_to({"type": "end"})
    await messages_until(communicator, lambda m: m["type"] == "call.ended")
    await assert_ended_once(call.id, "hangup", CallStatus.COMPLETED)


async def test_the_assistant_saying_goodbye_ends_completed_assistant_ended_once(settings):
    settings.VOICE_PROVIDERS_FACTORY = make_factory("ok goodbye")
    call, communicator = await started_call()
    await send_audio(communicator, silence(200) + speech(600) + silence(900))
    seen, _ = await messages_until(communicator, lambda m: m["type"] == "call.ended", 15)
    assert seen[-1]["reason"] == "assistant_ended"
    await assert_ended_once(call.id, "assistant_ended", CallStatus.COMPLETED)


async def test_the_call_length_limit_ends_completed_max_duration_once():
    call, communicator = await started_call(max_call_seconds=1)
    seen, _ = await messages_until(communicator, lambda m: m["type"] == "call.ended", 10)
    assert seen[-1]["reason"] == "max_duration"
    await assert_ended_once(call.id, "max_duration", CallStatus.COMPLETED)


async def test_silence_ends_completed_silence_timeout_once():
    call, communicator = await started_call(silence_timeout_seconds=1, starting_message="")
    seen, _ = await messages_until(communicator, lambda m: m["type"] == "call.ended", 10)
    assert seen[-1]["reason"] == "silence_timeout"
    await assert_ended_once(call.id, "silence_timeout", CallStatus.COMPLETED)


async def test_a_client_that_goes_away_ends_completed_client_gone_once():
    call, communicator = await started_call()
    await communicator.disconnect()
    await assert_ended_once(call.id, "client_gone", CallStatus.COMPLETED)


async def test_a_server_error_ends_failed_error_once(monkeypatch):
    call, communicator = await started_call()

    async def broken(self, kind, message):
        raise RuntimeError("boom")

    monkeypatch.setattr(consumers.WebCallConsumer, "handle_message", broken)
    await communicator.send_json_to({"type": "ping"})
    seen, _ = await messages_until(communicator, lambda m: m["type"] == "__closed__", 10)
    assert seen[-1]["code"] == 4500
    await assert_ended_once(call.id, "error", CallStatus.FAILED)


async def test_no_hello_ends_failed_no_hello_once(monkeypatch):
    monkeypatch.setattr(consumers, "HELLO_TIMEOUT_SECONDS", 0.2)
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token)
    await messages_until(communicator, lambda m: m["type"] == "__closed__", 5)
    await assert_ended_once(call.id, "no_hello", CallStatus.FAILED)


def test_the_reaper_ends_a_crashed_processes_call_failed_server_restart_once():
    call, _ = make_call()
    services.call_start(call=call, transport="websocket")
    Call.objects.filter(pk=call.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert services.calls_reap_orphans() == 1
    assert services.calls_reap_orphans() == 0
    asyncio.run(assert_ended_once(call.id, "server_restart", CallStatus.FAILED))


def test_a_token_nobody_used_ends_failed_never_connected_once():
    call, _ = make_call()
    Call.objects.filter(pk=call.pk).update(token_expires_at=timezone.now() - timedelta(minutes=5))
    assert services.calls_reap_orphans() == 1
    assert services.calls_reap_orphans() == 0
    asyncio.run(assert_ended_once(call.id, "never_connected", CallStatus.FAILED))


async def test_a_call_ended_before_its_hello_runs_nothing_and_reports_how_it_ended():
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token)
    await messages_until(communicator, lambda m: m["type"] == "webrtc.config")
    # Ended from elsewhere between the claim and the hello (a cancel, the reaper).
    await database_sync_to_async(services.call_end)(call_id=call.id, reason="canceled")
    await communicator.send_json_to({"type": "hello", "audio": "websocket"})
    seen, _ = await messages_until(communicator, lambda m: m["type"] == "__closed__", 10)
    kinds = [m["type"] for m in seen]
    assert "call.started" not in kinds
    assert {"type": "call.ended", "reason": "canceled"} in seen
    await assert_ended_once(call.id, "canceled", CallStatus.FAILED)
