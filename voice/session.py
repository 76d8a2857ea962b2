"""One realtime voice call: audio in, events and assistant audio out.

Stages are asyncio tasks joined by queues::

    push_audio -> VAD (shared, batched) -> TurnDetector ──urgent signals──> session
                                              │ pause / endpoint
    turn task: STT -> brain ─sentences─> reply's TTS task ─audio─> playout task -> events

Urgent signals (user started speaking, barge-in, cancel) are handled synchronously when the
VAD reports them, so they overtake queued data: the interrupted reply's tasks are cancelled,
its queued audio is dropped (here and in the outgoing event queue) and the transport is told
to flush what the client has buffered.

To hide speech-to-text latency a turn starts at a short pause (``prefetch_silence_ms``): the
transcript, and for side-effect-free reply engines the reply and its first audio, are prepared
while the endpoint silence runs, and released at once if the endpoint confirms the turn; if the
user goes on, they are dropped.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from voice import FRAME_BYTES, FRAME_MS, SAMPLE_RATE
from voice.audio import bytes_to_ms, split_frames
from voice.channel import EventChannel
from voice.config import SessionConfig
from voice.events import (
    AssistantSpeechStarted,
    AssistantSpeechStopped,
    AudioOut,
    CallEnded,
    CallStarted,
    Error,
    Event,
    Interruption,
    Transcript,
    TurnTimings,
    UserSpeechStarted,
    UserSpeechStopped,
)
from voice.providers import registry
from voice.providers.base import BrainRequest, ProviderError
from voice.recorder import StereoRecorder
from voice.text import SentenceSplitter, heard_prefix, split_sentences, substitute
from voice.turns import TurnDetector, TurnEvent, TurnEventKind

log = logging.getLogger(__name__)

Clock = Callable[[], float]


def _ms(samples: int) -> int:
    return samples * 1000 // SAMPLE_RATE


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, ProviderError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:300]


@dataclass(eq=False)
class _Reply:
    """One assistant utterance and its pipeline state."""

    turn: int
    speech_end_wall: float | None = None  # user speech end this replies to (wall clock)
    speech_end_ms: int = 0  # the same in call time
    interruptible: bool = True
    text_q: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    released: bool = False
    cancelled: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    playing: bool = False
    finished: bool = False
    end_call: bool = False
    end_reason: str = "assistant_ended"  # the call's end reason once an end_call reply is said
    pieces: list[tuple[str, int]] = field(default_factory=list)
    start_wall: float = 0.0
    start_ms: int = 0
    next_play_ms: int = 0  # listener time (ms since start_wall) the next frame plays at
    emitted_ms: int = 0
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    timings: dict[str, int | None] = field(default_factory=dict)
    #: Where the reply engine says the reply came from (``ReplyPart.source``).
    source: dict[str, Any] | None = None
    typed: bool = False  # answers typed text: no endpoint silence was waited for

    def release(self) -> None:
        self.released = True
        self.wake.set()


@dataclass(eq=False)
class _Turn:
    """One user utterance being answered (possibly speculatively, before its endpoint)."""

    number: int
    start: int  # samples
    end: int  # samples
    speech_end_wall: float
    reply: _Reply
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)
    transcript: str | None = None
    published: bool = False
    carry_text: str = ""
    audio: bytes = b""
    task: asyncio.Task[Any] | None = None
    #: What the user typed (``push_text``): the transcript, without speech-to-text.
    typed: str | None = None


class Session:
    """A realtime voice session for one call.

    ``providers`` may inject already-built providers (a :class:`voice.providers.registry.
    Providers`, or a dict with keys vad/stt/brain/tts) — warm shared ones from
    :func:`voice.providers.registry.warm_up`, or fakes in tests.  Without it the session
    builds its own and closes them at the end.  ``clock`` returns seconds (monotonic).
    """

    def __init__(
        self,
        config: SessionConfig,
        *,
        clock: Clock | None = None,
        providers: registry.Providers | dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self._clock = clock or time.monotonic
        if isinstance(providers, dict):
            providers = registry.Providers(**providers, owned=False)
        self._providers: registry.Providers | None = providers
        self._channel = EventChannel()
        self._detector = TurnDetector(
            threshold=config.vad_threshold,
            speech_start_ms=config.speech_start_ms,
            min_interruption_ms=config.min_interruption_ms,
            prefetch_silence_ms=config.prefetch_silence_ms,
            endpoint_silence_ms=config.endpoint_silence_ms,
            max_utterance_ms=int(config.max_utterance_seconds * 1000),
        )
        self.history: list[dict[str, str]] = []
        self._started = False
        self._closing = False
        self._closed = asyncio.Event()
        self._closer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._vad_stream: Any = None
        self._recorder: StereoRecorder | None = None
        self._audio_q: asyncio.Queue[tuple[_Reply, str | None, bytes | None]] = asyncio.Queue()
        # User audio: a ring of recent samples, positions in samples since the call started.
        self._position = 0
        self._ring = bytearray()
        self._ring_start = 0
        self._arrivals: deque[tuple[int, float]] = deque(maxlen=600)
        self._turn_counter = 0
        self._turn: _Turn | None = None  # the user turn being answered
        self._speaking: _Reply | None = None  # the reply whose audio is going out
        self._replies: list[_Reply] = []  # replies not finished yet, oldest first
        self._utterance_overlapped = False
        self._utterance_sustained = False
        self._carry_text = ""
        self._carry_start: int | None = None
        self._played_report: tuple[int, int] | None = None
        self._silence_prompts = 0
        self._saying_goodbye = False  # say_goodbye: the caller is no longer listened to
        self._t0 = self._clock()

    # ------------------------------------------------------------------ public API

    async def start(self) -> None:
        """Load providers (unless injected), emit CallStarted and speak the first message."""
        if self._started:
            return
        self._started = True
        self._t0 = self._clock()
        loop = asyncio.get_running_loop()
        try:
            if self._providers is None:
                self._providers = await _in_own_thread(_build_and_warm, self.config)
            self._vad_stream = self._providers.vad.open_stream(self._on_vad)
            if self.config.recording_path:
                self._recorder = StereoRecorder(self.config.recording_path)
        except Exception as exc:
            self._emit(Error(stage="start", message=_error_text(exc)))
            self._end("error")
            return
        self._emit(CallStarted())
        self._spawn(self._playout(), "playout")
        prepare = getattr(self._providers.brain, "prepare", None)
        if prepare is not None and self.config.knowledge:
            self._spawn(self._prepare_brain(prepare), "prepare-brain")
        if self.config.max_call_seconds:
            self._timers["max"] = loop.call_later(
                self.config.max_call_seconds, self._end, "max_duration"
            )
        first = substitute(self.config.first_message, self.config.variables).strip()
        if first:
            self._say(first)
        else:
            self._arm_silence_timer()

    async def _prepare_brain(self, prepare: Callable[..., Any]) -> None:
        try:
            await prepare(list(self.config.knowledge))
        except Exception as exc:  # only an optimisation: the first reply will try again
            log.warning("preparing the reply engine failed: %s", _error_text(exc))

    def push_audio(self, pcm: bytes) -> None:
        """Feed 16 kHz PCM16 LE mono user audio (any whole number of samples). Never blocks."""
        if len(pcm) % 2:
            raise ValueError("PCM16 audio must have an even number of bytes")
        if self._closing or self._vad_stream is None or not pcm:
            return
        self._ring += pcm
        self._position += len(pcm) // 2
        self._arrivals.append((self._position, self._clock()))
        if len(self._ring) > SAMPLE_RATE * 4 and self._position % SAMPLE_RATE < len(pcm) // 2:
            self._trim_ring()  # about once a second
        if self._recorder is not None:
            self._recorder.write_user(pcm)
        self._vad_stream.push(pcm)

    def report_played(self, ms: int) -> None:
        """The transport's report: the listener has heard ``ms`` of the current utterance."""
        if self._speaking is not None:
            self._played_report = (self._speaking.turn, int(ms))

    def say_goodbye(self, reason: str) -> bool:
        """End the call politely (ended from outside, e.g. over the REST API): stop what the
        assistant is saying (what was heard is kept) or preparing, say the goodbye line, then
        end with ``reason``. The caller is not listened to meanwhile. False when there is no
        goodbye line or the session is not running: the caller then ends the call at once."""
        return self._say_and_end(self.config.goodbye_message, reason)

    def push_text(self, text: str) -> bool:
        """A line the user typed, answered like a spoken turn once transcribed: a final user
        :class:`Transcript` (``typed``), the reply spoken, its :class:`TurnTimings` (measured
        from when the text arrived; no endpoint or transcription stage). A reply being spoken
        is interrupted as a barge-in would (what was heard is kept), one being prepared is
        answered together with the text, and the silence timeout starts again. False (and
        nothing happens) for blank text, or while the session is not running or says goodbye.
        """
        text = " ".join(text.split())
        if not text or self._closing or self._vad_stream is None or self._saying_goodbye:
            return False
        self._cancel_timer("silence")
        self._silence_prompts = 0
        self._carry_unheard_turn()
        self._stop_everything()
        self._turn_counter += 1
        now = self._clock()
        reply = _Reply(turn=self._turn_counter, speech_end_wall=now, speech_end_ms=self.call_ms)
        turn = _Turn(
            number=self._turn_counter,
            start=self._position,
            end=self._position,
            speech_end_wall=now,
            reply=reply,
            carry_text=self._carry_text,
            typed=text,
            transcript=text,
        )
        reply.typed = True
        self._turn = turn
        self._replies.append(reply)
        turn.task = self._spawn(self._run_turn(turn), f"turn-{turn.number}")
        reply.tasks.append(turn.task)
        reply.tasks.append(self._spawn(self._run_tts(reply), f"tts-{turn.number}"))
        self._confirm(turn)
        reply.timings["endpoint_ms"] = None  # typed: no endpoint to wait for
        return True

    def push_digit(self, digit: str) -> None:
        """A key the phone caller pressed: the assistant's DTMF rule for it, if any (others
        are ignored). ``say`` stops what the assistant is saying and speaks the rule's line;
        ``end_call`` speaks the rule's line (or the goodbye line) and hangs up."""
        rule = self.config.dtmf_rules.get(digit)
        if rule is None or self._closing or self._vad_stream is None or self._saying_goodbye:
            return
        action, text = rule
        if action == "end_call":
            if not self._say_and_end(text or self.config.goodbye_message, "assistant_ended"):
                self._end("assistant_ended")
            return
        text = substitute(text, self.config.variables).strip()
        if not text:
            return
        self._stop_everything()
        self._say(text)

    def _stop_everything(self) -> None:
        """Stop what the assistant says (what was heard is kept) or prepares."""
        speaking = self._speaking
        if speaking is not None and not speaking.finished:
            self._interrupt(speaking, self._position)
        if self._turn is not None:
            self._cancel_turn(self._turn)
        for reply in list(self._replies):
            self._cancel_reply(reply)

    def _say_and_end(self, line: str, reason: str) -> bool:
        text = substitute(line, self.config.variables).strip()
        if not text or self._closing or self._vad_stream is None or self._saying_goodbye:
            return False
        self._saying_goodbye = True
        self._stop_everything()
        self._cancel_timer("silence")
        reply = self._say(text, end_call=True)
        reply.interruptible = False
        reply.end_reason = reason
        return True

    def hangup(self, reason: str = "hangup") -> None:
        """End the call soon (synchronous; see :meth:`close`)."""
        self._end(reason)

    async def close(self, reason: str = "hangup") -> None:
        """End the call: stop every task, close files and owned providers, emit CallEnded.
        Idempotent; later calls wait for the first to finish."""
        if self._closer is None:
            self._closer = asyncio.ensure_future(self._shutdown(reason))
        await asyncio.shield(self._closer)

    async def events(self) -> AsyncIterator[Event]:
        """Every event in order; ends after :class:`CallEnded`."""
        while True:
            event = await self._channel.get()
            yield event
            if isinstance(event, CallEnded):
                return

    @property
    def call_ms(self) -> int:
        """Call time: ms of user audio received."""
        return _ms(self._position)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # ------------------------------------------------------------------ plumbing

    def _emit(self, event: Event) -> None:
        self._channel.put(event)

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"voice-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("voice session task %s failed", task.get_name(), exc_info=exc)
            self._emit(Error(stage="session", message=_error_text(exc)))  # type: ignore[arg-type]
            self._end("error")

    def _end(self, reason: str) -> None:
        if self._closer is None:
            self._closer = asyncio.ensure_future(self._shutdown(reason))

    def _wall_at(self, sample: int) -> float:
        """When the audio up to ``sample`` arrived (wall clock)."""
        for position, wall in self._arrivals:
            if position >= sample:
                return wall
        return self._clock()

    def _trim_ring(self) -> None:
        """Forget user audio no utterance can need any more."""
        pad = int(self.config.pre_speech_pad_ms * SAMPLE_RATE / 1000)
        keep = self._position - pad - SAMPLE_RATE  # VAD results lag the audio a little
        for start in (self._detector.utterance_start, self._detector.onset, self._carry_start):
            if start is not None:
                keep = min(keep, start - pad)
        drop = keep - self._ring_start
        if drop > 0:
            del self._ring[: drop * 2]
            self._ring_start = keep

    def _audio(self, start: int, end: int) -> bytes:
        start = max(start, self._ring_start)
        return bytes(self._ring[(start - self._ring_start) * 2 : (end - self._ring_start) * 2])

    def _since(self, wall: float | None) -> int | None:
        return None if wall is None else int(round((self._clock() - wall) * 1000))

    async def _shutdown(self, reason: str) -> None:
        self._closing = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._vad_stream is not None:
            self._vad_stream.close()
        if self._recorder is not None:
            self._recorder.close()
        if self._providers is not None and self._providers.owned:
            try:
                await self._providers.aclose()
            except Exception as exc:  # closing must finish whatever happens
                log.warning("closing providers failed: %s", _error_text(exc))
        self._emit(CallEnded(reason=reason))
        self._closed.set()

    # ------------------------------------------------------------------ turn taking

    def _on_vad(self, probability: float, end: int, size: int) -> None:
        if self._closing or self._saying_goodbye:
            return
        for event in self._detector.process(probability, end, size):
            self._on_turn_event(event)

    def _on_turn_event(self, event: TurnEvent) -> None:
        kind = event.kind
        if kind is TurnEventKind.START:
            self._on_speech_start(event)
        elif kind is TurnEventKind.SUSTAINED:
            self._utterance_sustained = True
            speaking = self._speaking
            if (
                speaking is not None
                and speaking.interruptible
                and self.config.interruptions_enabled
                and not speaking.finished
            ):
                self._interrupt(speaking, event.start)
        elif kind is TurnEventKind.PAUSE:
            if not self._ignore_utterance():
                self._begin_turn(event, confirmed=False)
        elif kind is TurnEventKind.RESUME:
            turn = self._turn
            if turn is not None and not turn.confirmed.is_set():
                self._cancel_turn(turn)
        elif kind is TurnEventKind.ENDPOINT:
            self._on_endpoint(event)

    def _ignore_utterance(self) -> bool:
        # Speech over the assistant that was too short to interrupt it ("mhm"): not a turn.
        return self._utterance_overlapped and not self._utterance_sustained

    def _on_speech_start(self, event: TurnEvent) -> None:
        self._cancel_timer("silence")
        self._silence_prompts = 0
        self._channel.put_urgent(UserSpeechStarted(start_ms=_ms(event.start)))
        speaking = self._speaking
        self._utterance_overlapped = speaking is not None and not speaking.finished
        self._utterance_sustained = False
        self._carry_unheard_turn()

    def _carry_unheard_turn(self) -> None:
        """The user goes on before hearing anything of the answer: answer everything
        together (the next turn carries this one's words, or its audio)."""
        turn = self._turn
        if turn is not None and turn.confirmed.is_set() and not turn.reply.playing:
            if turn.published and turn.transcript:
                self._carry_text = f"{turn.carry_text} {turn.transcript}".strip()
                if self.history and self.history[-1]["role"] == "user":
                    self.history.pop()
            else:
                self._carry_text = turn.carry_text
                self._carry_start = turn.start
            self._cancel_turn(turn)

    def _on_endpoint(self, event: TurnEvent) -> None:
        self._emit(UserSpeechStopped(start_ms=_ms(event.start), end_ms=_ms(event.end)))
        if self._ignore_utterance():
            self._utterance_overlapped = False
            if self._speaking is None:
                self._arm_silence_timer()
            return
        turn = self._turn
        if turn is not None and not turn.confirmed.is_set():
            if turn.end == event.end:
                self._confirm(turn)
                return
            self._cancel_turn(turn)
        self._begin_turn(event, confirmed=True)

    def _turn_start(self, event: TurnEvent) -> int:
        pad = int(self.config.pre_speech_pad_ms * SAMPLE_RATE / 1000)
        start = event.start if self._carry_start is None else min(self._carry_start, event.start)
        return max(0, start - pad)

    def _begin_turn(self, event: TurnEvent, *, confirmed: bool) -> None:
        self._turn_counter += 1
        wall = self._wall_at(event.end)
        reply = _Reply(turn=self._turn_counter, speech_end_wall=wall, speech_end_ms=_ms(event.end))
        turn = _Turn(
            number=self._turn_counter,
            start=self._turn_start(event),
            end=event.end,
            speech_end_wall=wall,
            reply=reply,
            carry_text=self._carry_text,
        )
        turn.audio = self._audio(turn.start, turn.end)
        self._turn = turn
        self._replies.append(reply)
        turn.task = self._spawn(self._run_turn(turn), f"turn-{turn.number}")
        reply.tasks.append(turn.task)
        reply.tasks.append(self._spawn(self._run_tts(reply), f"tts-{turn.number}"))
        if confirmed:
            self._confirm(turn)

    def _confirm(self, turn: _Turn) -> None:
        turn.reply.timings["endpoint_ms"] = self._since(turn.speech_end_wall)
        self._carry_text = ""
        self._carry_start = None
        turn.confirmed.set()
        turn.reply.release()
        self._publish_user(turn)

    def _publish_user(self, turn: _Turn) -> None:
        if turn.published or turn.transcript is None or not turn.confirmed.is_set():
            return
        turn.published = True
        if turn.transcript:
            self._emit(
                Transcript(
                    role="user",
                    text=turn.transcript,
                    final=True,
                    start_ms=_ms(turn.start),
                    end_ms=_ms(turn.end),
                    typed=turn.typed is not None,
                )
            )
            text = f"{turn.carry_text} {turn.transcript}".strip()
            self.history.append({"role": "user", "content": text})

    def _cancel_turn(self, turn: _Turn) -> None:
        self._cancel_reply(turn.reply)
        if self._turn is turn:
            self._turn = None

    def _cancel_reply(self, reply: _Reply) -> None:
        reply.cancelled = True
        reply.wake.set()
        for task in reply.tasks:
            task.cancel()
        if reply in self._replies:
            self._replies.remove(reply)

    # ------------------------------------------------------------------ stages

    async def _run_turn(self, turn: _Turn) -> None:
        """STT -> brain; sentences go to the reply's TTS task."""
        reply = turn.reply
        config = self.config
        providers = self._providers
        assert providers is not None
        if turn.typed is None:  # typed text is its own transcript
            try:
                text = await asyncio.wait_for(
                    providers.stt.transcribe(turn.audio, config.language),
                    config.stt_timeout_seconds,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await turn.confirmed.wait()
                self._emit(Error(stage="stt", message=_error_text(exc)))
                turn.transcript = ""
                self._say_into(reply, config.error_message)
                return
            turn.transcript = (text or "").strip()
            reply.timings["transcript_ms"] = self._since(turn.speech_end_wall)
        self._publish_user(turn)
        if not turn.transcript and not turn.carry_text:
            await turn.confirmed.wait()
            reply.text_q.put_nowait(None)  # nothing to answer
            return
        if not getattr(providers.brain, "speculative", False):
            await turn.confirmed.wait()
        history = list(self.history)
        if turn.published and history and history[-1]["role"] == "user":
            history.pop()  # this turn's own words go in user_text
        request = BrainRequest(
            user_text=f"{turn.carry_text} {turn.transcript}".strip(),
            history=history,
            system_prompt=config.system_prompt,
            variables=dict(config.variables),
            knowledge=list(config.knowledge),
            fallback_message=config.fallback_message,
            goodbye_message=config.goodbye_message,
            language=config.language,
        )
        splitter = SentenceSplitter()
        said = False
        try:
            async with asyncio.timeout(config.brain_timeout_seconds):
                async for part in providers.brain.reply(request):
                    if part.text:
                        if "first_text_ms" not in reply.timings:
                            reply.timings["first_text_ms"] = self._since(turn.speech_end_wall)
                        for sentence in splitter.feed(part.text):
                            said = True
                            reply.text_q.put_nowait(sentence)
                    if part.end_call:
                        reply.end_call = True
                    if part.source is not None:
                        reply.source = part.source
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await turn.confirmed.wait()
            self._emit(Error(stage="brain", message=_error_text(exc)))
            rest = splitter.flush()
            if not said and not rest:
                rest = [substitute(config.error_message, config.variables)]
            for sentence in rest:
                reply.text_q.put_nowait(sentence)
            reply.text_q.put_nowait(None)
            return
        for sentence in splitter.flush():
            reply.text_q.put_nowait(sentence)
        reply.text_q.put_nowait(None)

    def _say_into(self, reply: _Reply, text: str) -> None:
        for sentence in split_sentences(substitute(text, self.config.variables)):
            reply.text_q.put_nowait(sentence)
        reply.text_q.put_nowait(None)

    def _say(self, text: str, *, end_call: bool = False) -> _Reply:
        """Speak a fixed text as its own reply (first message, silence prompt)."""
        self._turn_counter += 1
        reply = _Reply(turn=self._turn_counter, end_call=end_call)
        self._replies.append(reply)
        splitter = SentenceSplitter()
        for sentence in splitter.feed(text) + splitter.flush():
            reply.text_q.put_nowait(sentence)
        reply.text_q.put_nowait(None)
        reply.tasks.append(self._spawn(self._run_tts(reply), f"tts-{reply.turn}"))
        reply.release()
        return reply

    async def _run_tts(self, reply: _Reply) -> None:
        """Sentences -> audio, in order, into the playout queue."""
        tts = self._providers.tts  # type: ignore[union-attr]
        while True:
            text = await reply.text_q.get()
            if text is None:
                break
            try:
                pcm = await asyncio.wait_for(tts.synthesize(text), self.config.tts_timeout_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._emit(Error(stage="tts", message=_error_text(exc)))
                self._end("error")  # the assistant cannot speak: nothing sensible is left
                return
            if pcm:
                self._audio_q.put_nowait((reply, text, pcm))
        self._audio_q.put_nowait((reply, None, None))

    async def _playout(self) -> None:
        """Replies' audio -> AudioOut frames, in order, paced to the listener."""
        while True:
            reply, text, pcm = await self._audio_q.get()
            if reply.cancelled:
                continue
            while not reply.released and not reply.cancelled:
                reply.wake.clear()
                await reply.wake.wait()
            if reply.cancelled:
                continue
            if text is None or pcm is None:
                await self._finish_reply(reply)
                continue
            if not reply.playing:
                self._start_playing(reply)
            reply.pieces.append((text, bytes_to_ms(len(pcm))))
            self._emit(
                Transcript(
                    role="assistant",
                    text=text,
                    final=False,
                    start_ms=self.call_ms,
                    end_ms=self.call_ms + bytes_to_ms(len(pcm)),
                    source=reply.source,
                )
            )
            for frame in split_frames(pcm, FRAME_BYTES):
                if reply.cancelled:
                    break
                await self._pace(reply)
                if reply.cancelled:
                    break
                self._emit(AudioOut(pcm=frame, turn=reply.turn))
                if self._recorder is not None:
                    self._recorder.add_assistant(frame)
                reply.emitted_ms += FRAME_MS
                reply.next_play_ms = max(reply.next_play_ms, self._listener_ms(reply)) + FRAME_MS

    def _listener_ms(self, reply: _Reply) -> int:
        return int((self._clock() - reply.start_wall) * 1000)

    async def _pace(self, reply: _Reply) -> None:
        if not self.config.pace_audio:
            if reply.emitted_ms % 200 == 0:
                await asyncio.sleep(0)  # let urgent signals in
            return
        while True:
            ahead = reply.next_play_ms - self._listener_ms(reply)
            if ahead <= self.config.playout_lead_ms or reply.cancelled:
                return
            await asyncio.sleep(min(ahead - self.config.playout_lead_ms, FRAME_MS) / 1000)

    def _start_playing(self, reply: _Reply) -> None:
        reply.playing = True
        reply.start_wall = self._clock()
        reply.start_ms = self.call_ms
        self._speaking = reply
        self._played_report = None
        reply.timings["first_audio_ms"] = self._since(reply.speech_end_wall)
        self._cancel_timer("silence")
        self._emit(AssistantSpeechStarted(turn=reply.turn, text=""))

    async def _finish_reply(self, reply: _Reply) -> None:
        if reply.playing:
            # Let the listener hear the end before saying it stopped (unpaced audio too:
            # the assistant is speaking as long as its audio plays).
            while not reply.cancelled:
                ahead = reply.next_play_ms - self._listener_ms(reply)
                if ahead <= 0:
                    break
                await asyncio.sleep(min(ahead, 50) / 1000)
            if reply.cancelled:
                return
        reply.finished = True
        if reply in self._replies:
            self._replies.remove(reply)
        text = " ".join(t for t, _ in reply.pieces)
        if reply.playing:
            if self._speaking is reply:
                self._speaking = None
            self._emit(AssistantSpeechStopped(turn=reply.turn, interrupted=False))
            self._emit(
                Transcript(
                    role="assistant",
                    text=text,
                    final=True,
                    start_ms=reply.start_ms,
                    end_ms=self.call_ms,
                    source=reply.source,
                )
            )
            self.history.append({"role": "assistant", "content": text})
        self._emit_timings(reply)
        if self._turn is not None and self._turn.reply is reply:
            self._turn = None
        if reply.end_call:
            self._end(reply.end_reason)
        elif self._speaking is None and not self._detector.in_utterance:
            self._arm_silence_timer()

    def _emit_timings(self, reply: _Reply, interruption_ms: int | None = None) -> None:
        if reply.speech_end_wall is None and interruption_ms is None:
            return
        timings = reply.timings
        self._emit(
            TurnTimings(
                turn=reply.turn,
                speech_end_ms=reply.speech_end_ms,
                endpoint_silence_ms=0 if reply.typed else self.config.endpoint_silence_ms,
                endpoint_ms=timings.get("endpoint_ms"),
                transcript_ms=timings.get("transcript_ms"),
                first_text_ms=timings.get("first_text_ms"),
                first_audio_ms=timings.get("first_audio_ms"),
                interruption_stop_ms=interruption_ms,
            )
        )

    # ------------------------------------------------------------------ barge-in

    def _interrupt(self, reply: _Reply, onset: int) -> None:
        """The user talks over ``reply``: stop it now, keep only what was heard."""
        self._cancel_reply(reply)
        dropped = self._channel.drop_audio(reply.turn)
        if self._recorder is not None:
            self._recorder.drop_assistant()
        sent_ms = reply.emitted_ms - dropped * FRAME_MS
        if self._played_report is not None and self._played_report[0] == reply.turn:
            played = min(self._played_report[1], sent_ms)
        else:  # estimate: what was sent, less what is still ahead of the listener
            ahead = max(0, reply.next_play_ms - self._listener_ms(reply))
            played = max(0, min(sent_ms, reply.emitted_ms - ahead))
        heard = heard_prefix(reply.pieces, played)
        stop_ms = int(round((self._clock() - self._wall_at(onset)) * 1000))
        self._speaking = None
        reply.finished = True
        self._channel.put_urgent(
            Interruption(turn=reply.turn, heard_text=heard, played_ms=played, stop_ms=stop_ms)
        )
        self._emit(AssistantSpeechStopped(turn=reply.turn, interrupted=True))
        self._emit(
            Transcript(
                role="assistant",
                text=heard,
                final=True,
                start_ms=reply.start_ms,
                end_ms=self.call_ms,
                interrupted=True,
                source=reply.source,
            )
        )
        if heard:
            self.history.append({"role": "assistant", "content": heard})
        self._emit_timings(reply, interruption_ms=stop_ms)
        if self._turn is not None and self._turn.reply is reply:
            self._turn = None

    # ------------------------------------------------------------------ timers

    def _cancel_timer(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _arm_silence_timer(self) -> None:
        if self._closing or not self.config.silence_timeout_seconds:
            return
        self._cancel_timer("silence")
        self._timers["silence"] = asyncio.get_running_loop().call_later(
            self.config.silence_timeout_seconds, self._on_silence
        )

    def _on_silence(self) -> None:
        self._timers.pop("silence", None)
        if self._closing or self._speaking is not None or self._detector.in_utterance:
            return
        if self._silence_prompts == 0 and self.config.silence_prompt:
            self._silence_prompts = 1
            self._say(substitute(self.config.silence_prompt, self.config.variables))
        else:
            self._end("silence_timeout")


def _build_and_warm(config: SessionConfig) -> registry.Providers:
    providers = registry.build(config)
    for provider in (providers.vad, providers.stt, providers.brain, providers.tts):
        warm = getattr(provider, "warm_up", None)
        if warm is not None:
            warm()
    return providers


async def _in_own_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run blocking ``fn`` in a thread that ends with it (no pool thread outlives the call)."""
    executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="voice-build")
    try:
        return await asyncio.wrap_future(executor.submit(fn, *args))
    finally:
        # The job is done unless we were cancelled; then let the thread finish on its own.
        executor.shutdown(wait=not asyncio.current_task().cancelling())  # type: ignore[union-attr]
