"""Text helpers: ``{{variable}}`` substitution, sentence splitting, heard-text cutting."""

from __future__ import annotations

import re

_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")


def substitute(text: str, variables: dict[str, str]) -> str:
    """Replace ``{{name}}`` with ``variables[name]``; unknown names are left as they are."""
    return _VAR.sub(lambda m: str(variables.get(m.group(1), m.group(0))), text)


# A sentence ends at . ! ? (or …) followed by whitespace; "e.g." and decimals stay whole.
_SENTENCE_END = re.compile(r"(?<!\b[A-Za-z])(?<!\d)[.!?…]+[\"')\]]*\s+")
_CLAUSE_END = re.compile(r"[,;:]\s+")


class SentenceSplitter:
    """Turns a stream of text deltas into speakable sentences.

    The first piece of a reply is cut at a clause boundary when it is long, so the first
    audio comes sooner; later pieces are whole sentences.
    """

    def __init__(self, first_max_chars: int = 90, min_chars: int = 12) -> None:
        self._buffer = ""
        self._emitted = 0
        self.first_max_chars = first_max_chars
        self.min_chars = min_chars

    def feed(self, delta: str) -> list[str]:
        """Add text; return the sentences completed by it."""
        self._buffer += delta
        out: list[str] = []
        while True:
            piece = self._next_piece()
            if piece is None:
                return out
            out.append(piece)

    def flush(self) -> list[str]:
        """The rest of the text, at the end of the reply."""
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []

    def _next_piece(self) -> str | None:
        for match in _SENTENCE_END.finditer(self._buffer):
            if match.end() >= self.min_chars or self._emitted:
                return self._take(match.end())
        if self._emitted == 0 and len(self._buffer) > self.first_max_chars:
            for match in _CLAUSE_END.finditer(self._buffer):
                if match.end() >= self.min_chars * 2:
                    return self._take(match.end())
        return None

    def _take(self, end: int) -> str | None:
        piece, self._buffer = self._buffer[:end].strip(), self._buffer[end:]
        self._emitted += 1
        return piece or None


def split_sentences(text: str) -> list[str]:
    """Split a whole reply into speakable pieces (see :class:`SentenceSplitter`)."""
    splitter = SentenceSplitter()
    return [p for p in splitter.feed(text) + splitter.flush() if p]


def heard_prefix(pieces: list[tuple[str, int]], played_ms: int) -> str:
    """What the listener heard of an utterance.

    ``pieces`` are (text, audio duration ms) in order.  Whole pieces that finished playing
    are kept; of the piece that was playing, the share of words matching the share of its
    audio that played.
    """
    heard: list[str] = []
    elapsed = 0
    for text, duration in pieces:
        if played_ms >= elapsed + duration:
            heard.append(text)
        elif played_ms > elapsed and duration > 0:
            words = text.split()
            count = int(len(words) * (played_ms - elapsed) / duration)
            if count:
                heard.append(" ".join(words[:count]))
            break
        else:
            break
        elapsed += duration
    return " ".join(heard).strip()
