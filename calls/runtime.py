"""Runs a `voice` session for a call and bridges it to a transport and to the database.

The transport (`calls.transport.CallTransport`: the browser's socket, WebRTC, a Twilio media
stream) hands audio, heard time and digits in and gets protocol messages and 16 kHz audio out;
everything the engine reports is persisted through `calls.services`. The runtime knows no wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils.module_loading import import_string

from assistants.models import DEFAULT_SPEECH, dtmf_rules_of
from calls import capacity, services
from calls.models import Call
from calls.protocol import CallState, CloseCode, ServerMessage
from calls.transport import CallTransport
from calls.vocabulary import EndReason, Role
from voice import FRAME_BYTES, SAMPLE_RATE
from voice import events as ev
from voice.config import ProviderSpec, SessionConfig
from voice.providers.options import check_options, is_networked, schema
from voice.providers.registry import default_cache, warm_up
from voice.session import Session

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10
FRAME_SAMPLES = FRAME_BYTES // 2
STOP_TIMEOUT_SECONDS = 10
# An end over the REST API lets the assistant say its goodbye line; this bounds how long.
GOODBYE_TIMEOUT_SECONDS = 15


#: Microphone audio kept while a call's session is not running yet (before `hello`, while
#: it starts): the latest 2 s of it, fed to the session once it runs.
EARLY_AUDIO_BYTES = 2 * 16000 * 2


class EarlyAudio:
    """Bounded buffer of audio that arrived too early: the latest ``limit`` bytes."""

    def __init__(self, limit: int = EARLY_AUDIO_BYTES) -> None:
        self.limit = limit
        self._pcm = bytearray()

    def add(self, pcm: bytes) -> None:
        self._pcm += pcm
        excess = len(self._pcm) - self.limit
        if excess > 0:
            del self._pcm[: excess + excess % 2]  # whole samples

    def take(self) -> bytes:
        pcm, self._pcm = bytes(self._pcm), bytearray()
        return pcm

    def __len__(self) -> int:
        return len(self._pcm)


def recording_name(call_id: str) -> str:
    return f"recordings/{call_id}.wav"


#: (assistant, stage, option) already reported: a stored option that is no longer accepted
#: is logged once per process, not on every call.
_IGNORED_LOGGED: set[tuple[str, str, str]] = set()


def _log_ignored_once(assistant_id: str, stage: str, option: str, why: str) -> None:
    key = (assistant_id, stage, option)
    if key in _IGNORED_LOGGED:
        return
    if len(_IGNORED_LOGGED) > 10_000:
        _IGNORED_LOGGED.clear()
    _IGNORED_LOGGED.add(key)
    # The option's name, never its value: legacy values may be credentials.
    logger.warning(
        "assistant %s: ignoring stored speech.%s.options.%s (%s)", assistant_id, stage, option, why
    )


def _provider_spec(assistant_id: str, stage: str, setting: Any) -> ProviderSpec:
    """The engine's spec for one stage: the tenant's valid options, the operator's options
    for that provider and, for a networked provider, the named endpoint's URL and key.

    Stored options that are no longer accepted (a tenant ``base_url`` or ``model_dir``
    from before they were refused, say) are dropped, not fatal: the call goes on."""
    default = DEFAULT_SPEECH[stage]["provider"]
    setting = setting if isinstance(setting, dict) else {}
    name = setting.get("provider") or default
    stored = setting.get("options") if isinstance(setting.get("options"), dict) else {}
    if schema(stage, name) is None:
        _log_ignored_once(assistant_id, stage, "provider", f"unknown provider; using {default}")
        name, stored = default, {}
    options, errors = check_options(stage, name, stored)
    for option, why in errors.items():
        _log_ignored_once(assistant_id, stage, option, why)
    if is_networked(stage, name):
        endpoints = settings.VOICE_ENDPOINTS
        chosen = options.get("endpoint") or next(iter(endpoints), "")  # omitted: the first
        endpoint = endpoints.get(chosen)
        if endpoint is None:
            _log_ignored_once(
                assistant_id, stage, "endpoint", f"no endpoint {chosen!r}; using {default}"
            )
            return _provider_spec(assistant_id, stage, {"provider": default})
        options.update(endpoint.provider_options())
    options = {**settings.VOICE_PROVIDER_OPTIONS.get((stage, name), {}), **options}
    if name == "faster-whisper" and not {"model_dir", "cache_dir"} & set(options):
        options["cache_dir"] = str(settings.VOICE_MODEL_DIR)  # prepared by `make`
    return ProviderSpec(name, options)


def session_config_for(call: Call) -> SessionConfig:
    """The engine's config from the call's assistant (reads the database: call in a thread).

    Settings reach the engine only through here (``voice`` reads none): endpoints, operator
    options and the bound of the shared provider cache."""
    assistant = call.assistant
    speech = {**DEFAULT_SPEECH, **(assistant.speech or {})}
    default_cache.max_per_kind = settings.VOICE_PROVIDER_CACHE_SIZE

    def spec(stage: str) -> ProviderSpec:
        return _provider_spec(assistant.id, stage, speech[stage])

    recording = Path(settings.MEDIA_ROOT) / recording_name(call.id)
    recording.parent.mkdir(parents=True, exist_ok=True)
    config = SessionConfig(
        system_prompt=assistant.system_prompt,
        language=assistant.language,
        variables={str(k): str(v) for k, v in (call.variables or {}).items()},
        vad=spec("vad"),
        stt=spec("stt"),
        brain=spec("brain"),
        tts=spec("tts"),
        knowledge=[(e.question, e.answer, e.alternatives) for e in assistant.knowledge.all()],
        fallback_message=assistant.fallback_message,
        goodbye_message=assistant.goodbye_message,
        dtmf_rules=dtmf_rules_of(assistant.dtmf_rules),
        endpoint_silence_ms=assistant.endpoint_silence_ms,
        min_interruption_ms=assistant.min_interruption_ms,
        max_call_seconds=float(min(assistant.max_call_seconds, settings.CALL_MAX_SECONDS)),
        silence_timeout_seconds=float(assistant.silence_timeout_seconds),
        recording_path=str(recording),
        # A blank starting message means the assistant waits for the caller to speak.
        first_message=assistant.starting_message,
    )
    return config


async def providers_for(config: SessionConfig):
    """Warm shared providers (loaded once per process), or the test/dev factory in settings."""
    factory = getattr(settings, "VOICE_PROVIDERS_FACTORY", None)
    if factory:
        factory = import_string(factory) if isinstance(factory, str) else factory
        return await factory(config)
    return await warm_up(config)


class CallRuntime:
    """One live call: a voice session, its event pump, heartbeats and persistence."""

    def __init__(self, *, call: Call, transport: CallTransport, text_only: bool = False) -> None:
        self.call = call
        self.transport = transport
        #: No microphone: the visitor types (`push_text`); the caller's side is silence.
        self.text_only = text_only
        self.send_json = transport.send_message
        self.session: Session | None = None
        self.ended = asyncio.Event()
        self._finishing = False
        self.end_reason: str | None = None
        self._tasks: list[asyncio.Task] = []
        self._pump_task: asyncio.Task | None = None
        self.unfinished_reply: ev.Transcript | None = None
        self._goodbye_deadline: asyncio.TimerHandle | None = None
        self._deadline_stop: asyncio.Task | None = None
        #: Audio pushed before the session runs: fed to it when it does, not dropped.
        self.early_audio = EarlyAudio()
        self._listening = False

    async def start(self) -> None:
        # Counted from here (before any wait) until _finish: MAX_CONCURRENT_CALLS.
        capacity.run_started(self.call.id)
        self.transport.attach(self)
        config = await database_sync_to_async(session_config_for)(self.call)
        providers = await providers_for(config)
        started = await database_sync_to_async(services.call_start)(
            call=self.call, transport=self.transport.name
        )
        if not started:
            # Ended meanwhile (reaped, canceled): tell the client how, run nothing.
            reason = await database_sync_to_async(services.call_end_reason)(call_id=self.call.id)
            await self._finish(reason or EndReason.ERROR)
            return
        self.session = Session(config, providers=providers)
        await self.send_json(
            {
                "type": ServerMessage.CALL_STARTED,
                "call_id": self.call.id,
                "sample_rate": self.transport.sample_rate,
                "audio": self.transport.name,
                "text": True,  # typed lines are taken (`text` messages)
                "text_only": self.text_only,
            }
        )
        self._pump_task = asyncio.create_task(self._pump(), name=f"call-{self.call.id}-pump")
        self._tasks = [
            self._pump_task,
            asyncio.create_task(self._heartbeat(), name=f"call-{self.call.id}-heartbeat"),
        ]
        if self.text_only:
            self._tasks.append(
                asyncio.create_task(self._feed_silence(), name=f"call-{self.call.id}-silence")
            )
        await self.session.start()
        self._listening = True
        early = self.early_audio.take()
        if early and not self.ended.is_set() and not self.text_only:
            self.session.push_audio(early)

    # --- from the transport ---

    def push_audio(self, pcm: bytes) -> None:
        if self.ended.is_set() or self.text_only:
            return
        if self.session is None or not self._listening:
            self.early_audio.add(pcm)  # the session is starting: kept, fed once it runs
            return
        self.session.push_audio(pcm)

    def push_text(self, text: str) -> bool:
        """A line the visitor typed: a user turn, answered aloud and stored like a spoken
        one. False when the call cannot take it now (not started, ending, saying goodbye)."""
        if self.session is None or self.ended.is_set():
            return False
        return self.session.push_text(text)

    async def _feed_silence(self) -> None:
        """Text-only calls: the caller's side is silence in real time, as in a muted call, so
        call time, the recording and the silence timeout run as in any call."""
        loop = asyncio.get_running_loop()
        start, fed = loop.time(), 0
        while not self.ended.is_set() and self.session is not None:
            due = int((loop.time() - start) * SAMPLE_RATE) // FRAME_SAMPLES
            if due > fed:
                # At most a second at once: a stalled loop is not made up for in one push.
                self.session.push_audio(bytes(FRAME_BYTES * min(due - fed, 50)))
                fed = due
            await asyncio.sleep(0.1)

    def report_played(self, played_total_ms: int) -> None:
        """The far end has played ``played_total_ms`` in all (browser playback reports)."""
        self.transport.played(played_total_ms)

    def report_heard(self, ms: int) -> None:
        """The listener has heard ``ms`` of the current utterance (from the transport)."""
        if self.session is not None:
            self.session.report_played(ms)

    def push_digit(self, digit: str) -> None:
        """A DTMF key the caller pressed (phone transports)."""
        if self.session is not None and not self.ended.is_set():
            self.session.push_digit(digit)

    async def stop(self, reason: str) -> None:
        """End the call (idempotent) and wait until it is persisted and every task is gone.

        Whatever fails on the way, the session is closed, the call ends (`error` when the
        engine could not end it) and no task of this call is left running."""
        try:
            if self.session is not None:
                await self.session.close(reason)  # the pump sees CallEnded and finishes
            if self._pump_task is None or self._pump_task.done():
                await self._finish(reason)  # no pump (start failed early): finish here
            await asyncio.wait_for(self.ended.wait(), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            logger.error("call %s: engine did not end in time; ending it as failed", self.call.id)
            await self._finish(EndReason.ERROR)
        except Exception:
            logger.exception("call %s: stopping failed; ending it as failed", self.call.id)
            await self._finish(EndReason.ERROR)
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            capacity.run_ended(self.call.id)

    async def end_gracefully(self, reason: str) -> None:
        """End the call as asked from outside (`POST /v1/calls/{id}/end`): the assistant says
        its goodbye line, then the call ends with `reason`; without a goodbye line (or a
        running session) at once. Returns without waiting for the goodbye: the consumer keeps
        serving the socket meanwhile (playback reports)."""
        session = self.session
        if session is None or self.ended.is_set() or not session.say_goodbye(reason):
            await self.stop(reason)
            return
        if self._goodbye_deadline is None:
            self._goodbye_deadline = asyncio.get_running_loop().call_later(
                GOODBYE_TIMEOUT_SECONDS, self._goodbye_overdue, reason
            )

    def _goodbye_overdue(self, reason: str) -> None:
        """The goodbye did not end the call in time: end it now, as asked."""
        if not self.ended.is_set():
            self._deadline_stop = asyncio.ensure_future(self.stop(reason))

    # --- engine -> transport and database ---

    async def _pump(self) -> None:
        reason: str = EndReason.ERROR
        try:
            async for event in self.session.events():
                if isinstance(event, ev.CallEnded):
                    reason = event.reason
                    break
                await self._handle(event)
        except asyncio.CancelledError:
            reason = EndReason.CLIENT_GONE
            raise
        except Exception:
            logger.exception("call %s: event pump failed", self.call.id)
        finally:
            await self._finish(reason)

    async def _handle(self, event: ev.Event) -> None:
        call_id = self.call.id
        if isinstance(event, ev.AudioOut):
            await self.transport.send_audio(event.pcm)
        elif isinstance(event, ev.Transcript):
            await self.send_json(
                {
                    "type": ServerMessage.TRANSCRIPT,
                    "role": event.role,
                    "text": event.text,
                    "final": event.final,
                    "start_ms": event.start_ms,
                    "end_ms": event.end_ms,
                    **({"typed": True} if getattr(event, "typed", False) else {}),
                }
            )
            if getattr(event, "typed", False):
                await self._send_state(CallState.THINKING)  # as user.speech.stopped does
            if event.role == "assistant":
                # Kept until the final line arrives: if the call ends mid-reply, what was
                # being said is still stored (marked interrupted).
                self.unfinished_reply = None if event.final else event
            if event.final and event.text.strip():
                await database_sync_to_async(services.transcript_append)(
                    call_id=call_id,
                    role=event.role,
                    text=event.text,
                    start_ms=event.start_ms,
                    end_ms=event.end_ms,
                    interrupted=getattr(event, "interrupted", False),
                    source=getattr(event, "source", None),
                )
        elif isinstance(event, ev.UserSpeechStarted):
            await self.send_json({"type": ServerMessage.USER_SPEECH_STARTED})
        elif isinstance(event, ev.UserSpeechStopped):
            await self.send_json({"type": ServerMessage.USER_SPEECH_STOPPED})
            await self._send_state(CallState.THINKING)
        elif isinstance(event, ev.AssistantSpeechStarted):
            self.transport.utterance_started()
            await self.send_json({"type": ServerMessage.ASSISTANT_SPEECH_STARTED})
            await self._send_state(CallState.SPEAKING)
        elif isinstance(event, ev.AssistantSpeechStopped):
            await self.send_json({"type": ServerMessage.ASSISTANT_SPEECH_STOPPED})
            await self._send_state(CallState.LISTENING)
        elif isinstance(event, ev.Interruption):
            self.transport.interrupted()  # drops what the transport still holds to play
            await self.send_json(
                {"type": ServerMessage.INTERRUPTION, "heard_text": event.heard_text}
            )
        elif isinstance(event, ev.TurnTimings):
            timings = {k: v for k, v in event.to_dict().items() if k not in ("type", "turn")}
            await self.send_json(
                {"type": ServerMessage.TURN_TIMINGS, "turn": event.turn, **timings}
            )
            await database_sync_to_async(services.turn_record)(
                call_id=call_id, index=event.turn, timings=timings
            )
        elif isinstance(event, ev.Error):
            logger.warning("call %s: %s error: %s", call_id, event.stage, event.message)
            await self.send_json(
                {"type": ServerMessage.ERROR, "stage": event.stage, "message": event.message}
            )
        elif isinstance(event, ev.CallStarted):
            await self._send_state(CallState.LISTENING)

    async def _send_state(self, state: CallState) -> None:
        await self.send_json({"type": ServerMessage.STATE, "state": state})

    async def _finish(self, reason: str) -> None:
        # Set before any wait: the pump's end and stop()'s fallback may both get here.
        if self._finishing:
            return
        self._finishing = True
        if self._goodbye_deadline is not None:
            self._goodbye_deadline.cancel()
        capacity.run_ended(self.call.id)
        self.end_reason = reason
        recording = ""
        path = Path(settings.MEDIA_ROOT) / recording_name(self.call.id)
        if path.exists() and path.stat().st_size > 44:
            recording = recording_name(self.call.id)
        try:
            if self.unfinished_reply is not None and self.unfinished_reply.text.strip():
                reply, self.unfinished_reply = self.unfinished_reply, None
                await database_sync_to_async(services.transcript_append)(
                    call_id=self.call.id,
                    role=Role.ASSISTANT,
                    text=reply.text,
                    start_ms=reply.start_ms,
                    end_ms=reply.end_ms,
                    interrupted=True,
                )
            await database_sync_to_async(services.call_end)(
                call_id=self.call.id, reason=reason, recording_name=recording
            )
        except Exception:
            # The row stays live and its heartbeats stop: the reaper ends it. The client is
            # still told, and the transport still closed.
            logger.exception("call %s: could not store the end of the call", self.call.id)
        finally:
            self.ended.set()
        with contextlib.suppress(Exception):
            await self.send_json({"type": ServerMessage.CALL_ENDED, "reason": reason})
        # Always after call.ended: the transport is torn down, with a code daphne can send.
        code = CloseCode.SERVER_ERROR if reason == EndReason.ERROR else CloseCode.NORMAL
        try:
            await self.transport.close(code)
        except Exception:
            logger.exception("call %s: closing the transport failed", self.call.id)

    async def _heartbeat(self) -> None:
        while not self.ended.is_set():
            await asyncio.sleep(HEARTBEAT_SECONDS)
            with contextlib.suppress(Exception):
                await database_sync_to_async(services.call_heartbeat)(call_id=self.call.id)
