"""The session's outgoing event queue, where urgent signals overtake queued audio."""

from __future__ import annotations

import asyncio
from collections import deque

from voice.events import AudioOut, CallEnded, Event


class EventChannel:
    """An unbounded FIFO of events with one extra: :meth:`drop_audio` removes assistant audio
    that is still waiting here (the transport has not sent it), so an interruption reaches the
    transport right after the events already in flight, ahead of any stale audio."""

    def __init__(self) -> None:
        self._items: deque[Event] = deque()
        self._ready = asyncio.Event()
        self.closed = False

    def put(self, event: Event) -> None:
        if self.closed:
            return
        self._items.append(event)
        self._ready.set()
        if isinstance(event, CallEnded):
            self.closed = True

    def put_urgent(self, event: Event) -> None:
        """Queue ``event`` ahead of any assistant audio still waiting (urgent signals such as
        "user started speaking" must not sit behind seconds of audio)."""
        if self.closed:
            return
        for index, queued in enumerate(self._items):
            if isinstance(queued, AudioOut):
                self._items.insert(index, event)
                self._ready.set()
                return
        self.put(event)

    def drop_audio(self, turn: int) -> int:
        """Remove queued :class:`AudioOut` of ``turn``; return how many frames were dropped."""
        kept = [e for e in self._items if not (isinstance(e, AudioOut) and e.turn == turn)]
        dropped = len(self._items) - len(kept)
        if dropped:
            self._items = deque(kept)
        return dropped

    def pending(self) -> int:
        return len(self._items)

    async def get(self) -> Event:
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()
