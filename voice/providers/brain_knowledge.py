"""The offline reply engine: answers from the assistant's question/answer entries.

A user's words are matched to the questions by sentence-embedding similarity; below
``threshold`` the fallback line is said.  A goodbye ends the call with the goodbye line.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import AsyncIterator

import numpy as np

from voice.providers.base import BrainRequest, ReplyPart, Tunable, Worker
from voice.text import substitute

DEFAULT_GOODBYE = (
    r"\b(good\s*-?\s*bye|bye(\s*-?\s*bye)?|farewell|see you( later)?|that'?s all|that is all"
    r"|hang up|end (the|this) call|talk to you later|have a (nice|good) (day|one))\b"
)


class KnowledgeBrain(Tunable):
    """Shareable across calls: the embedding model is loaded once, question sets are cached
    (views made by :meth:`tuned` share both; ``threshold`` is their tuning)."""

    speculative = True  # pure and free: may run before the endpoint is confirmed
    TUNING = ("threshold",)

    def __init__(
        self,
        model_dir: str | None = None,
        threshold: float = 0.5,
        goodbye_pattern: str = DEFAULT_GOODBYE,
        cache_size: int = 256,
        embedder: object | None = None,
    ) -> None:
        if embedder is None:
            from voice.providers.embeddings import MiniLmEmbedder

            embedder = MiniLmEmbedder(model_dir)
        self._embedder = embedder
        self.threshold = threshold
        self._goodbye = re.compile(goodbye_pattern, re.IGNORECASE)
        self._index: OrderedDict[tuple[str, ...], np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._worker = Worker("knowledge")

    def is_goodbye(self, text: str) -> bool:
        return bool(self._goodbye.search(text))

    def _question_vectors(self, questions: tuple[str, ...]) -> np.ndarray:
        vectors = self._index.get(questions)
        if vectors is None:
            vectors = self._embedder.embed(list(questions))  # type: ignore[attr-defined]
            self._index[questions] = vectors
            while len(self._index) > self._cache_size:
                self._index.popitem(last=False)
        else:
            self._index.move_to_end(questions)
        return vectors

    def match(self, text: str, knowledge: list[tuple[str, str]]) -> tuple[int, float]:
        """Index and similarity of the best-matching question (-1 when there are none)."""
        if not knowledge or not text.strip():
            return -1, 0.0
        questions = tuple(q for q, _ in knowledge)
        vectors = self._question_vectors(questions)
        query = self._embedder.embed([text])[0]  # type: ignore[attr-defined]
        scores = vectors @ query
        best = int(np.argmax(scores))
        return best, float(scores[best])

    def answer(self, request: BrainRequest) -> ReplyPart:
        """The whole reply for one turn (blocking; runs in the worker thread)."""
        variables = request.variables
        if self.is_goodbye(request.user_text):
            return ReplyPart(substitute(request.goodbye_message, variables), end_call=True)
        best, score = self.match(request.user_text, request.knowledge)
        if best >= 0 and score >= self.threshold:
            return ReplyPart(substitute(request.knowledge[best][1], variables))
        return ReplyPart(substitute(request.fallback_message, variables))

    async def prepare(self, knowledge: list[tuple[str, str]]) -> None:
        """Embed a call's questions ahead of its first turn (optional hook of the session)."""
        questions = tuple(q for q, _ in knowledge)
        if questions:
            await self._worker.run(self._question_vectors, questions)

    async def reply(self, request: BrainRequest) -> AsyncIterator[ReplyPart]:
        yield await self._worker.run(self.answer, request)

    def warm_up(self) -> None:
        self._worker.run_sync(self._embedder.embed, ["warm up"])  # type: ignore[attr-defined]
