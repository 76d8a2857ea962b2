"""The call socket with Channels' WebsocketCommunicator: refusals with their close codes,
size, depth and rate limits, bad messages, server errors that end the call once, a whole call,
a client vanishing mid-reply, the concurrent-calls limit, and the reaper.

(The communicator accepts any close code; tests/calls/test_socket_live.py checks the codes
against a real daphne.)"""

from __future__ import annotations

import asyncio
import json
import wave
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from accounts.models import Organization
from assistants.services import assistant_create
from calls import capacity, consumers, protocol, services
from calls.models import Call, CallStatus
from calls.protocol import MAX_JSON_DEPTH, CloseCode, json_too_deep
from calls.runtime import CallRuntime
from tests.calls.fakes import make_factory, silence, speech
from widgets.services import widget_create
from widgetsite.routing import websocket_urlpatterns

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = "https://shop.example"
APP = URLRouter(websocket_urlpatterns)


@pytest.fixture(autouse=True)
def fake_voice(settings, tmp_path):
    settings.VOICE_PROVIDERS_FACTORY = make_factory()
    settings.MEDIA_ROOT = tmp_path


def make_call(*, origin: str = ORIGIN, enabled_widget: bool = True):
    org = Organization.objects.create(name=f"org-{Organization.objects.count()}")
    assistant = assistant_create(
        organization=org,
        data={
            "name": "Shop",
            "system_prompt": "Help.",
            "starting_message": "Hi there",
            "knowledge": [{"question": "When are you open?", "answer": "Nine to six. Every day"}],
        },
    )
    widget = widget_create(
        organization=org, data={"assistant": assistant, "allowed_origins": [ORIGIN]}
    )
    return services.call_create(organization=org, assistant=assistant, widget=widget, origin=origin)


async def open_socket(call: Call, token: str, *, origin: str = ORIGIN, query: str | None = None):
    path = (
        f"/new-web-call/connection?assistant_id={call.assistant_id}&call_id={call.id}&token={token}"
    )
    communicator = WebsocketCommunicator(
        APP, path if query is None else query, headers=[(b"origin", origin.encode())]
    )
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def expect_refusal(communicator, code: int, words: str):
    message = json.loads(await communicator.receive_from())
    if message["type"] == "webrtc.config":  # offered once the call is claimed
        message = json.loads(await communicator.receive_from())
    assert message["type"] == "error" and message["code"] == code
    assert words.lower() in message["message"].lower()
    closing = await communicator.receive_output()
    assert closing["type"] == "websocket.close"
    assert closing["code"] == code
    assert words.lower() in closing["reason"].lower()
    await communicator.wait()


async def messages_until(communicator, predicate, timeout: float = 10.0):  # noqa: ASYNC109
    """JSON messages (audio counted, not kept) until one matches the predicate."""
    seen, audio_bytes = [], 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        output = await communicator.receive_output(timeout=max(0.01, deadline - loop.time()))
        if output["type"] == "websocket.close":
            seen.append({"type": "__closed__", "code": output.get("code")})
            return seen, audio_bytes
        if output.get("bytes"):
            audio_bytes += len(output["bytes"])
            continue
        message = json.loads(output["text"])
        seen.append(message)
        if predicate(message):
            return seen, audio_bytes


async def send_audio(communicator, pcm: bytes, frame: int = 640):
    for i in range(0, len(pcm), frame):
        await communicator.send_to(bytes_data=pcm[i : i + frame])
        await asyncio.sleep(0.002)


async def test_socket_without_query_parameters_is_closed_with_4400():
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token, query="/new-web-call/connection")
    await expect_refusal(communicator, 4400, "required")


async def test_unknown_call_is_closed_with_4404():
    call, token = await database_sync_to_async(make_call)()
    query = f"/new-web-call/connection?assistant_id={call.assistant_id}&call_id={'0' * 24}&token={token}"
    await expect_refusal(await open_socket(call, token, query=query), 4404, "unknown call")


async def test_bad_token_is_closed_with_4401_and_the_call_stays_claimable():
    call, token = await database_sync_to_async(make_call)()
    await expect_refusal(await open_socket(call, "not-the-token"), 4401, "bad token")
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.QUEUED and refreshed.connected_at is None


async def test_expired_token_is_closed_with_4401():
    call, token = await database_sync_to_async(make_call)()
    await Call.objects.filter(pk=call.pk).aupdate(
        token_expires_at=timezone.now() - timedelta(seconds=1)
    )
    await expect_refusal(await open_socket(call, token), 4401, "expired")


async def test_origin_not_allowed_is_closed_with_4403():
    call, token = await database_sync_to_async(make_call)()
    await expect_refusal(
        await open_socket(call, token, origin="https://evil.example"), 4403, "not allowed"
    )


async def test_call_from_the_servers_own_page_is_joined_from_that_origin():
    # create-call allows this server's own pages (the admin preview); the socket must too.
    call, token = await database_sync_to_async(make_call)(origin="http://app.local:8000")
    path = (
        f"/new-web-call/connection?assistant_id={call.assistant_id}&call_id={call.id}&token={token}"
    )
    headers = [(b"origin", b"http://app.local:8000"), (b"host", b"app.local:8000")]
    communicator = WebsocketCommunicator(APP, path, headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    assert json.loads(await communicator.receive_from())["type"] == "webrtc.config"
    await communicator.disconnect()


async def test_second_connection_with_the_same_token_is_closed_with_4409():
    call, token = await database_sync_to_async(make_call)()
    first = await open_socket(call, token)
    await expect_refusal(await open_socket(call, token), 4409, "already connected")
    await first.disconnect()


async def test_no_hello_closes_with_4408_and_fails_the_call(monkeypatch):
    monkeypatch.setattr(consumers, "HELLO_TIMEOUT_SECONDS", 0.2)
    call, token = await database_sync_to_async(make_call)()
    await expect_refusal(await open_socket(call, token), 4408, "hello")
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.FAILED and refreshed.end_reason == "no_hello"


async def test_oversized_audio_frame_closes_with_4413_and_ends_the_call():
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token)
    await communicator.send_json_to({"type": "hello", "audio": "websocket"})
    await messages_until(communicator, lambda m: m["type"] == "call.started")
    await communicator.send_to(bytes_data=b"\x00" * 4000)
    seen, _ = await messages_until(communicator, lambda m: m["type"] == "__closed__")
    assert seen[-1]["code"] == CloseCode.TOO_BIG == 4413, seen
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.COMPLETED and refreshed.end_reason == "client_gone"


async def test_flooding_client_is_closed_with_4429():
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token)
    for _ in range(consumers.RATE_BURST + 50):
        await communicator.send_to(text_data='{"type": "ping"}')
    seen, _ = await messages_until(communicator, lambda m: m["type"] == "__closed__")
    assert seen[-1] == {"type": "__closed__", "code": CloseCode.FLOODING}
    assert {
        "type": "error",
        "stage": "protocol",
        "code": 4429,
        "message": "Too many messages.",
    } in seen
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.is_terminal


async def test_whole_call_greets_answers_and_ends_completed_with_transcript_and_recording():
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token)
    await communicator.send_json_to({"type": "hello", "audio": "websocket"})
    seen, audio = await messages_until(
        communicator,
        lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"],
    )
    started = next(m for m in seen if m["type"] == "call.started")
    assert started["sample_rate"] == 16000 and started["audio"] == "websocket"
    assert seen[-1]["text"] == "Hi there" and audio > 0
    await send_audio(communicator, silence(200) + speech(700) + silence(900))
    seen, audio = await messages_until(
        communicator,
        lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"],
        timeout=15,
    )
    kinds = [m["type"] for m in seen]
    assert "user.speech.started" in kinds and "user.speech.stopped" in kinds
    user = next(m for m in seen if m["type"] == "transcript" and m["role"] == "user" and m["final"])
    assert user["text"] == "what are your opening hours"
    assert "Nine to six" in seen[-1]["text"] and audio > 0
    await communicator.send_json_to({"type": "end"})
    seen, _ = await messages_until(communicator, lambda m: m["type"] == "call.ended")
    assert seen[-1]["reason"] == "hangup"
    await communicator.wait()

    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.COMPLETED and refreshed.end_reason == "hangup"
    assert refreshed.duration_seconds and refreshed.duration_seconds > 0
    assert refreshed.transport == "websocket"
    entries = [e async for e in refreshed.transcript.order_by("seq")]
    assert [(e.role, e.text) for e in entries][:2] == [
        ("assistant", "Hi there"),
        ("user", "what are your opening hours"),
    ]
    assert "Nine to six" in entries[2].text
    assert await refreshed.turns.acount() >= 1
    with wave.open(refreshed.recording.path) as recording:
        assert recording.getnchannels() == 2 and recording.getframerate() == 16000
        assert recording.getnframes() > 16000


async def test_client_vanishing_mid_reply_ends_the_call_and_keeps_the_partial_transcript():
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token)
    await communicator.send_json_to({"type": "hello", "audio": "websocket"})
    await messages_until(
        communicator,
        lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"],
    )
    await send_audio(communicator, speech(700) + silence(900))
    await messages_until(
        communicator, lambda m: m["type"] == "assistant.speech.started", timeout=15
    )
    await communicator.disconnect()  # mid-reply

    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.COMPLETED and refreshed.end_reason == "client_gone"
    texts = [row async for row in refreshed.transcript.order_by("seq").values_list("role", "text")]
    assert texts[:2] == [("assistant", "Hi there"), ("user", "what are your opening hours")]
    # The reply being spoken when the client left is kept, marked interrupted.
    last = await refreshed.transcript.order_by("seq").alast()
    assert last.role == "assistant" and last.interrupted and "Nine to six" in last.text


@pytest.mark.django_db
def test_reaper_fails_orphaned_calls_and_leaves_live_ones(transactional_db):
    stale, _ = make_call()
    fresh, _ = make_call()
    queued, _ = make_call()
    long_ago = timezone.now() - timedelta(minutes=5)
    Call.objects.filter(pk=stale.pk).update(
        status=CallStatus.IN_PROGRESS, started_at=long_ago, heartbeat_at=long_ago
    )
    Call.objects.filter(pk=fresh.pk).update(
        status=CallStatus.IN_PROGRESS, started_at=long_ago, heartbeat_at=timezone.now()
    )

    from calls.reaper import reap_once

    assert reap_once() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    queued.refresh_from_db()
    assert stale.status == CallStatus.FAILED and stale.end_reason == "server_restart"
    assert stale.duration_seconds and stale.duration_seconds >= 299
    assert fresh.status == CallStatus.IN_PROGRESS
    assert queued.status == CallStatus.QUEUED


# --- Bad messages: refused with a protocol error, and the call goes on ---


async def started_call():
    """A call that has said hello and heard the greeting: (call, communicator)."""
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token)
    await communicator.send_json_to({"type": "hello", "audio": "websocket"})
    await messages_until(
        communicator,
        lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"],
    )
    return call, communicator


async def expect_protocol_error(communicator, words: str) -> None:
    seen, _ = await messages_until(communicator, lambda m: m["type"] in ("error", "__closed__"))
    assert seen[-1]["type"] == "error" and seen[-1]["stage"] == "protocol", seen
    assert words.lower() in seen[-1]["message"].lower(), seen[-1]
    assert "code" not in seen[-1]  # nothing is closed


async def expect_call_goes_on(communicator, call: Call) -> None:
    await communicator.send_json_to({"type": "ping"})
    seen, _ = await messages_until(communicator, lambda m: m["type"] in ("pong", "__closed__"))
    assert seen[-1] == {"type": "pong"}, seen
    assert (await Call.objects.aget(pk=call.pk)).status == CallStatus.IN_PROGRESS


async def hang_up(communicator, call: Call) -> None:
    await communicator.send_json_to({"type": "end"})
    seen, _ = await messages_until(communicator, lambda m: m["type"] == "__closed__")
    assert {"type": "call.ended", "reason": "hangup"} in seen
    assert seen[-1] == {"type": "__closed__", "code": CloseCode.NORMAL}
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.COMPLETED and refreshed.end_reason == "hangup"


DEEP_JSON = '{"type": "ping", "x": ' + "[" * 30_000 + "]" * 30_000 + "}"  # 60 KB


async def test_deeply_nested_json_is_refused_without_recursing_and_the_call_goes_on():
    call, communicator = await started_call()
    await communicator.send_to(text_data=DEEP_JSON)
    await expect_protocol_error(communicator, f"deeper than {MAX_JSON_DEPTH}")
    await expect_call_goes_on(communicator, call)
    await hang_up(communicator, call)


async def test_json_the_depth_check_misses_is_still_refused_when_the_parser_recurses(monkeypatch):
    monkeypatch.setattr(protocol, "json_too_deep", lambda text, limit=0: False)
    call, communicator = await started_call()
    await communicator.send_to(text_data=DEEP_JSON)  # json.loads raises RecursionError
    await expect_protocol_error(communicator, "deeper than")
    await expect_call_goes_on(communicator, call)
    await hang_up(communicator, call)


@pytest.mark.parametrize(
    "played",
    ["1e400", "-1e400", "true", "false", '"250"', "-1", "86400001", "1e300", "null", "[250]"],
)
async def test_playback_with_a_played_ms_that_is_no_duration_is_refused_and_the_call_goes_on(
    played,
):
    call, communicator = await started_call()
    await communicator.send_to(text_data='{"type": "playback", "played_ms": ' + played + "}")
    await expect_protocol_error(communicator, "played_ms")
    await expect_call_goes_on(communicator, call)
    await hang_up(communicator, call)


async def test_playback_with_a_valid_played_ms_is_accepted_without_an_error():
    call, communicator = await started_call()
    for played in ("0", "250", "250.5", "86400000"):
        await communicator.send_to(text_data='{"type": "playback", "played_ms": ' + played + "}")
    await expect_call_goes_on(communicator, call)  # the pong comes first: no error before it
    await hang_up(communicator, call)


async def test_messages_that_are_not_a_json_object_with_a_known_type_are_refused():
    call, communicator = await started_call()
    for text, words in [
        ("[1, 2]", "JSON object with a type"),
        ('"hello"', "JSON object with a type"),
        ("5", "JSON object with a type"),
        ("null", "JSON object with a type"),
        ("not json", "JSON object with a type"),
        ('{"type": 5}', "JSON object with a type"),
        ('{"kind": "hello"}', "JSON object with a type"),
        ('{"type": "dance"}', "unknown message type"),
        ('{"type": "ping", "n": ' + "9" * 5000 + "}", "JSON object with a type"),
    ]:
        await communicator.send_to(text_data=text)
        await expect_protocol_error(communicator, words)
    await expect_call_goes_on(communicator, call)
    await hang_up(communicator, call)


async def test_text_over_64_kib_in_utf8_bytes_closes_with_4413_though_under_it_in_characters():
    call, communicator = await started_call()
    text = '{"type": "ping", "x": "' + "é" * 40_000 + '"}'  # 40 K characters, 80 KB
    assert len(text) < protocol.MAX_TEXT_BYTES < len(text.encode())
    await communicator.send_to(text_data=text)
    seen, _ = await messages_until(communicator, lambda m: m["type"] == "__closed__")
    assert seen[-1] == {"type": "__closed__", "code": CloseCode.TOO_BIG}
    assert any(m.get("code") == 4413 and "bytes" in m["message"] for m in seen), seen
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.COMPLETED and refreshed.end_reason == "client_gone"


@pytest.mark.parametrize(
    ("text", "deeper"),
    [
        ("[" * 33 + "]" * 33, True),
        ("[" * 32 + "]" * 32, False),
        ('{"a": ' * 33 + "1" + "}" * 33, True),
        # Brackets inside strings do not nest, however many.
        ('{"type": "ping", "x": "' + "[{" * 100 + '"}', False),
        # An escaped quote does not end the string; an escaped backslash before a quote does.
        ('{"x": "\\"' + "[" * 40 + '"}', False),
        ('{"x": "\\\\", "y": ' + "[" * 33 + "]" * 33 + "}", True),
        ('["a\\\\\\"' + "[" * 40 + '"]', False),
        ("[" + "[]," * 1000 + "[]]", False),  # many brackets, shallow
        ('{"s": "é", "x": ' + "[" * 33 + "]" * 33 + "}", True),  # multi-byte text before
    ],
)
def test_json_depth_is_measured_without_parsing_and_strings_do_not_count(text, deeper):
    def depth(value) -> int:  # the reference, on what the parser makes of the text
        if isinstance(value, dict | list):
            items = value.values() if isinstance(value, dict) else value
            return 1 + max((depth(item) for item in items), default=0)
        return 0

    assert (depth(json.loads(text)) > MAX_JSON_DEPTH) is deeper
    assert json_too_deep(text) is deeper


# --- Server errors: the call ends once, failed/error, and nothing is left running ---


@pytest.fixture
def recorded(monkeypatch):
    """The runtimes the consumers start, and the reasons calls actually ended with."""
    runtimes: list[CallRuntime] = []
    ended: list[str] = []

    class RecordingRuntime(CallRuntime):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            runtimes.append(self)

    original_end = services.call_end

    def counting_call_end(**kwargs):
        done = original_end(**kwargs)
        if done:
            ended.append(kwargs["reason"])
        return done

    monkeypatch.setattr(consumers, "CallRuntime", RecordingRuntime)
    monkeypatch.setattr(services, "call_end", counting_call_end)
    return runtimes, ended


async def expect_server_error_close(communicator, call: Call, ended: list[str]) -> list[dict]:
    seen, _ = await messages_until(communicator, lambda m: m["type"] == "__closed__")
    assert seen[-1] == {"type": "__closed__", "code": CloseCode.SERVER_ERROR}, seen
    assert any(m["type"] == "error" and m.get("code") == 4500 for m in seen), seen
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.FAILED and refreshed.end_reason == "error"
    assert ended == ["error"]  # once
    return seen


async def test_a_handler_that_raises_ends_the_call_once_as_failed_and_stops_its_runtime(
    monkeypatch, recorded
):
    runtimes, ended = recorded

    def boom(self, played_total_ms):
        raise OverflowError("cannot convert float infinity to integer")

    monkeypatch.setattr(CallRuntime, "report_played", boom)
    call, communicator = await started_call()
    assert capacity.running() == 1
    await communicator.send_to(text_data='{"type": "playback", "played_ms": 100}')
    seen = await expect_server_error_close(communicator, call, ended)
    assert [m for m in seen if m["type"] == "call.ended"] == [
        {"type": "call.ended", "reason": "error"}
    ]
    [runtime] = runtimes
    assert runtime.ended.is_set() and runtime.session.closed
    assert all(task.done() for task in runtime._tasks)
    leftover = [
        t
        for t in asyncio.all_tasks()
        if t.get_name().startswith(f"call-{call.id}") and not t.done()
    ]
    assert leftover == []
    assert capacity.running() == 0
    await communicator.wait()


async def test_an_exception_before_hello_ends_the_call_as_failed_and_closes_4500(
    monkeypatch, recorded
):
    _, ended = recorded

    def boom(text):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(consumers, "decode_client_message", boom)
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token)
    await communicator.send_json_to({"type": "hello", "audio": "websocket"})
    await expect_server_error_close(communicator, call, ended)


async def test_a_call_that_cannot_start_at_hello_ends_failed_and_closes_4500(settings, recorded):
    _, ended = recorded

    async def no_providers(config):
        raise RuntimeError("the speech models are missing")

    settings.VOICE_PROVIDERS_FACTORY = no_providers
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token)
    await communicator.send_json_to({"type": "hello", "audio": "websocket"})
    seen = await expect_server_error_close(communicator, call, ended)
    assert {"type": "call.ended", "reason": "error"} in seen
    assert capacity.running() == 0


async def test_a_vanished_client_stops_the_runtime_and_the_call_ends_once_client_gone(recorded):
    runtimes, ended = recorded
    call, communicator = await started_call()
    await communicator.disconnect()
    [runtime] = runtimes
    assert runtime.session.closed and all(task.done() for task in runtime._tasks)
    assert ended == ["client_gone"]
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.COMPLETED and refreshed.end_reason == "client_gone"


# --- The concurrent calls limit (MAX_CONCURRENT_CALLS, per process) ---


async def test_hello_is_refused_4503_when_the_process_carries_its_limit(settings):
    settings.MAX_CONCURRENT_CALLS = 1
    await database_sync_to_async(make_call)()  # created here, not yet connected: counts
    call, token = await database_sync_to_async(make_call)()
    communicator = await open_socket(call, token)
    await communicator.send_json_to({"type": "hello", "audio": "websocket"})
    seen, _ = await messages_until(communicator, lambda m: m["type"] == "__closed__")
    assert seen[-1] == {"type": "__closed__", "code": CloseCode.BUSY}
    assert any(m.get("code") == 4503 and "busy" in m["message"] for m in seen), seen
    assert not any(m["type"] == "call.started" for m in seen)
    refreshed = await Call.objects.aget(pk=call.pk)
    assert refreshed.status == CallStatus.FAILED and refreshed.end_reason == "server_busy"


async def test_a_running_call_counts_against_the_limit_until_it_ends(settings):
    settings.MAX_CONCURRENT_CALLS = 1
    call, communicator = await started_call()
    assert await database_sync_to_async(capacity.calls_in_use)() == 1
    assert not await database_sync_to_async(capacity.has_room)()
    await hang_up(communicator, call)
    assert await database_sync_to_async(capacity.calls_in_use)() == 0


def busy_response_checks(response) -> None:
    assert response.status_code == 503, response.content
    assert response.headers["Retry-After"] == str(capacity.RETRY_AFTER_SECONDS)
    body = response.json()
    assert body["status"] is False and "busy" in body["message"]


def test_create_call_and_initiate_answer_503_with_retry_after_when_the_process_is_full(
    settings, api, anon, widget, assistant
):
    settings.MAX_CONCURRENT_CALLS = 2
    origin = {"Origin": "https://app.example.com"}
    first = anon.post("/v1/widgets/create-call", {"widget_id": widget.id}, headers=origin)
    second = api.post("/v1/calls/initiate", {"assistantId": assistant.id, "type": "web"})
    assert first.status_code == 201 and second.status_code == 201
    before = Call.objects.count()

    busy_response_checks(
        anon.post("/v1/widgets/create-call", {"widget_id": widget.id}, headers=origin)
    )
    busy_response_checks(
        api.post("/v1/calls/initiate", {"assistantId": assistant.id, "type": "web"})
    )
    assert Call.objects.count() == before

    # A token that expired unused frees its place.
    Call.objects.filter(pk=first.json()["call_id"]).update(
        token_expires_at=timezone.now() - timedelta(seconds=1)
    )
    again = api.post("/v1/calls/initiate", {"assistantId": assistant.id, "type": "web"})
    assert again.status_code == 201, again.content


# --- The reaper: calls no process will end ---


def reap() -> int:
    from calls.reaper import reap_once

    return reap_once()


@pytest.mark.django_db
def test_reaper_fails_calls_whose_token_expired_unused_after_a_grace(transactional_db):
    long_expired, _ = make_call()
    just_expired, _ = make_call()
    fresh, _ = make_call()
    now = timezone.now()
    Call.objects.filter(pk=long_expired.pk).update(token_expires_at=now - timedelta(minutes=2))
    Call.objects.filter(pk=just_expired.pk).update(token_expires_at=now - timedelta(seconds=2))

    assert reap() == 1
    for call in (long_expired, just_expired, fresh):
        call.refresh_from_db()
    assert long_expired.status == CallStatus.FAILED
    assert long_expired.end_reason == "never_connected"
    assert long_expired.duration_seconds is None
    assert just_expired.status == CallStatus.QUEUED  # a client may be connecting right now
    assert fresh.status == CallStatus.QUEUED


@pytest.mark.django_db
def test_reaper_fails_calls_connected_without_hello_whose_process_is_gone(transactional_db):
    orphan, orphan_token = make_call()
    waiting, waiting_token = make_call()
    for call, token in ((orphan, orphan_token), (waiting, waiting_token)):
        claimed = services.call_claim(
            call_id=call.id, assistant_id=call.assistant_id, token=token, origin=ORIGIN
        )
        assert claimed.heartbeat_at is not None  # stamped at claim
    long_ago = timezone.now() - timedelta(minutes=5)
    Call.objects.filter(pk=orphan.pk).update(connected_at=long_ago, heartbeat_at=long_ago)

    assert reap() == 1
    orphan.refresh_from_db()
    waiting.refresh_from_db()
    assert orphan.status == CallStatus.FAILED and orphan.end_reason == "server_restart"
    assert waiting.status == CallStatus.QUEUED and waiting.connected_at is not None
