"""The offline reply engine: answers from the assistant's question/answer entries.

What the caller said is matched against each entry's question, answer and alternative
phrasings, semantically (sentence embeddings) and lexically (normalised, stemmed words with a
small synonym table): see :mod:`voice.understanding`.  The engine answers only when the best
entry scores at least ``threshold`` and leads the runner-up by ``margin``; when two entries
are close it asks which one the caller means, naming both, and a short reply ("the first
one", "holidays") settles it on the next turn; below ``floor`` it says the fallback line
followed by a few topics it can help with.  Every reply carries ``source``: the entry it came
from and its score.  A goodbye ends the call with the goodbye line.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

from voice.providers.base import BrainRequest, ReplyPart, Tunable, Worker
from voice.text import substitute
from voice.understanding import (
    Decision,
    Entry,
    KnowledgeIndex,
    Thresholds,
    clarification_text,
    decide,
    entries_of,
    pending_candidates,
    resolve_follow_up,
    topic_of,
)

DEFAULT_GOODBYE = (
    r"\b(good\s*-?\s*bye|bye(\s*-?\s*bye)?|farewell|see you( later)?|that'?s all|that is all"
    r"|hang up|end (the|this) call|talk to you later|have a (nice|good) (day|one))\b"
)

#: How many topics a decline names.
TOPICS_NAMED = 3


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


class KnowledgeBrain(Tunable):
    """Shareable across calls: the embedding model is loaded once, indexes of knowledge sets
    are cached (views made by :meth:`tuned` share both; ``threshold``, ``margin`` and
    ``floor`` are their tuning)."""

    speculative = True  # pure and free: may run before the endpoint is confirmed
    TUNING = ("threshold", "margin", "floor", "lead")

    def __init__(
        self,
        model_dir: str | None = None,
        threshold: float = Thresholds.answer,
        goodbye_pattern: str = DEFAULT_GOODBYE,
        cache_size: int = 256,
        embedder: object | None = None,
        margin: float = Thresholds.margin,
        floor: float = Thresholds.floor,
        lead: float = Thresholds.lead,
    ) -> None:
        if embedder is None:
            from voice.providers.embeddings import MiniLmEmbedder

            embedder = MiniLmEmbedder(model_dir)
        self._embedder = embedder
        self.threshold = threshold
        self.margin = margin
        self.floor = floor
        self.lead = lead
        self._goodbye = re.compile(goodbye_pattern, re.IGNORECASE)
        self._index: OrderedDict[tuple[Entry, ...], KnowledgeIndex] = OrderedDict()
        self._cache_size = cache_size
        self._worker = Worker("knowledge")

    @property
    def thresholds(self) -> Thresholds:
        floor = min(self.floor, self.threshold)
        return Thresholds(answer=self.threshold, margin=self.margin, lead=self.lead, floor=floor)

    def is_goodbye(self, text: str) -> bool:
        return bool(self._goodbye.search(text))

    def index(self, knowledge: Any) -> KnowledgeIndex:
        """The (cached) index of a knowledge set: ``(question, answer)`` or
        ``(question, answer, alternatives)`` tuples, or objects with those attributes."""
        entries = entries_of(knowledge)
        index = self._index.get(entries)
        if index is None:
            index = KnowledgeIndex(entries, self._embedder)
            self._index[entries] = index
            while len(self._index) > self._cache_size:
                self._index.popitem(last=False)
        else:
            self._index.move_to_end(entries)
        return index

    def match(self, text: str, knowledge: Any) -> tuple[int, float]:
        """Index and blended score of the best-matching entry (-1 when there are none)."""
        if not knowledge or not text.strip():
            return -1, 0.0
        scores = self.index(knowledge).score(text)
        best = int(scores.combined.argmax())
        return best, float(scores.combined[best])

    def understand(
        self, text: str, knowledge: Any, history: list[dict[str, str]] | None = None
    ) -> Decision:
        """What to do with ``text``: answer an entry, ask which one, or decline."""
        if not knowledge or not text.strip():
            return Decision("decline")
        index = self.index(knowledge)
        scores = index.score(text)
        decision = decide(scores, self.thresholds)
        pending = pending_candidates(history or [], index.entries)
        if pending and decision.kind != "answer":
            chosen = resolve_follow_up(text, pending, index, scores)
            if chosen is not None:
                others = [float(scores.combined[i]) for i in pending if i != chosen]
                return Decision(
                    "answer",
                    entry=chosen,
                    score=float(scores.combined[chosen]),
                    candidates=tuple(pending),
                    runner_up=next((i for i in pending if i != chosen), -1),
                    runner_up_score=max(others, default=0.0),
                    detail={"follow_up": 1.0},
                    ranking=decision.ranking,
                )
        return decision

    def _source(self, decision: Decision, entries: tuple[Entry, ...]) -> dict[str, Any]:
        source: dict[str, Any] = {"kind": decision.kind, "score": round(decision.score, 3)}
        if decision.kind == "answer":
            source["entry"] = decision.entry
            source["question"] = entries[decision.entry].question
        if decision.candidates:
            source["candidates"] = list(decision.candidates)
        if decision.runner_up >= 0:
            source["runner_up"] = decision.runner_up
            source["runner_up_score"] = round(decision.runner_up_score, 3)
            if decision.runner_up < len(entries):
                source["runner_up_question"] = entries[decision.runner_up].question
        if decision.detail.get("follow_up"):
            source["follow_up"] = True
        return source

    def answer(self, request: BrainRequest) -> ReplyPart:
        """The whole reply for one turn (blocking; runs in the worker thread)."""
        variables = request.variables
        if self.is_goodbye(request.user_text):
            return ReplyPart(
                substitute(request.goodbye_message, variables),
                end_call=True,
                source={"kind": "goodbye"},
            )
        decision = self.understand(request.user_text, request.knowledge, request.history)
        if not request.knowledge:
            return ReplyPart(
                substitute(request.fallback_message, variables), source={"kind": "decline"}
            )
        entries = self.index(request.knowledge).entries
        source = self._source(decision, entries)
        if decision.kind == "answer":
            return ReplyPart(substitute(entries[decision.entry].answer, variables), source=source)
        if decision.kind == "clarify":
            return ReplyPart(clarification_text(entries, decision.candidates), source=source)
        return ReplyPart(self.decline_text(request, decision, entries), source=source)

    def decline_text(
        self, request: BrainRequest, decision: Decision, entries: tuple[Entry, ...]
    ) -> str:
        """The fallback line as a lead-in, then a few topics the assistant can help with (the
        nearest ones to what was asked)."""
        lead = substitute(request.fallback_message, request.variables).strip()
        nearest = list(decision.ranking[:TOPICS_NAMED]) or list(range(len(entries)))[:TOPICS_NAMED]
        topics = _join([topic_of(entries[i]) for i in sorted(nearest)])
        offer = f"I can help with questions about {topics}."
        return f"{lead} {offer}" if lead else offer

    async def prepare(self, knowledge: Any) -> None:
        """Index a call's knowledge ahead of its first turn (optional hook of the session)."""
        if knowledge:
            await self._worker.run(self.index, knowledge)

    async def reply(self, request: BrainRequest) -> AsyncIterator[ReplyPart]:
        yield await self._worker.run(self.answer, request)

    def warm_up(self) -> None:
        self._worker.run_sync(self._embedder.embed, ["warm up"])  # type: ignore[attr-defined]
