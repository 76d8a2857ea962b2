"""The small interfaces every provider implements, and shared plumbing."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")

#: ``on_result(probability, end_sample, window_samples)``
VadCallback = Callable[[float, int, int], None]


class ProviderError(Exception):
    """A provider failed; the message is safe to show (no credentials)."""


class ProviderUnavailable(ProviderError):
    """A provider's package or model is not installed (the message says what to install)."""


@runtime_checkable
class VadStream(Protocol):
    """One call's VAD state. ``push`` is cheap and synchronous; results arrive through the
    callback given to :meth:`VadProvider.open_stream`, in order, possibly a little later."""

    def push(self, pcm: bytes) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class VadProvider(Protocol):
    def open_stream(self, on_result: VadCallback) -> VadStream: ...


@runtime_checkable
class SttProvider(Protocol):
    async def transcribe(self, pcm: bytes, language: str) -> str:
        """Transcribe 16 kHz PCM16 mono audio."""
        ...


@dataclass(frozen=True)
class ReplyPart:
    """A piece of a reply: text to say and/or the request to end the call after it."""

    text: str = ""
    end_call: bool = False
    #: Where the reply came from, for the transcript (JSON-friendly; e.g. the knowledge
    #: engine's ``{"kind": "answer", "entry": 3, "question": ..., "score": 0.71, ...}``).
    source: dict[str, Any] | None = None


@dataclass
class BrainRequest:
    """What a reply engine gets for one turn."""

    user_text: str
    history: list[dict[str, str]]  # [{"role": "user"|"assistant", "content": ...}], oldest first
    system_prompt: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    #: ``(question, answer)`` or ``(question, answer, alternatives)`` entries.
    knowledge: list[tuple[Any, ...]] = field(default_factory=list)
    fallback_message: str = ""
    goodbye_message: str = ""
    language: str = "en"


@runtime_checkable
class BrainProvider(Protocol):
    #: True when a reply may be computed before the endpoint is confirmed (no side effects,
    #: no cost): the session then hides its latency too.
    speculative: bool

    def reply(self, request: BrainRequest) -> AsyncIterator[ReplyPart]: ...


@runtime_checkable
class TtsProvider(Protocol):
    async def synthesize(self, text: str) -> bytes:
        """Speak ``text``; return 16 kHz PCM16 mono audio."""
        ...


class Worker:
    """A provider's own worker thread(s) for blocking work, so the event loop never waits.

    Threads start lazily on the first job and end on :meth:`aclose`.
    """

    def __init__(self, name: str, threads: int = 1) -> None:
        self._name = name
        self._threads = threads
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._pending: set[concurrent.futures.Future[Any]] = set()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the worker thread and await its result."""
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    self._threads, thread_name_prefix=f"voice-{self._name}"
                )
            future = self._executor.submit(fn, *args)
            self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return await asyncio.wrap_future(future)

    def run_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the worker thread and block until done (for warm-up)."""
        with self._lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    self._threads, thread_name_prefix=f"voice-{self._name}"
                )
            future = self._executor.submit(fn, *args)
        return future.result()

    async def aclose(self) -> None:
        """Stop the threads after the job in hand (queued jobs are cancelled)."""
        with self._lock:
            executor, self._executor = self._executor, None
            pending = list(self._pending)
        if executor is None:
            return
        executor.shutdown(wait=False, cancel_futures=True)
        if pending:
            await asyncio.wait([asyncio.wrap_future(f) for f in pending], timeout=30)
        # Nothing is running any more, so joining the idle threads takes microseconds.
        executor.shutdown(wait=True)

    def close(self) -> None:
        """Synchronous variant of :meth:`aclose` (waits for the job in hand)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


class Tunable:
    """Per-call tuning without a second model copy.

    ``tuned(**tuning)`` returns a shallow copy sharing the model and the worker thread,
    with the tuning options applied; it costs a few hundred bytes.  A view never closes
    what it shares: closing is the base provider's business.  ``tune(**tuning)`` applies
    them in place (to a provider nobody else uses).  Subclasses list their options in
    ``TUNING`` and override :meth:`_apply` where an option needs more than an attribute.
    """

    TUNING: ClassVar[tuple[str, ...]] = ()
    #: The provider a view was made from (None: this is a base provider).
    base: Any = None

    def _apply(self, **tuning: Any) -> None:
        for name, value in tuning.items():
            setattr(self, name, value)

    def tune(self, **tuning: Any) -> None:
        unknown = sorted(set(tuning) - set(self.TUNING))
        if unknown:
            raise ProviderError(f"{type(self).__name__} has no tuning option {unknown[0]!r}")
        self._apply(**tuning)

    def tuned(self, **tuning: Any) -> Any:
        view = copy.copy(self)
        view.base = self.base or self
        view.tune(**tuning)
        return view

    def close(self) -> None:
        """Stop the worker thread (synchronous; base providers only)."""
        worker = getattr(self, "_worker", None)
        if self.base is None and worker is not None:
            worker.close()

    async def aclose(self) -> None:
        worker = getattr(self, "_worker", None)
        if self.base is None and worker is not None:
            await worker.aclose()


async def aclose_provider(provider: Any) -> None:
    """Close a provider if it has ``aclose()`` or ``close()``."""
    aclose = getattr(provider, "aclose", None)
    if aclose is not None:
        await aclose()
        return
    close = getattr(provider, "close", None)
    if close is not None:
        close()
