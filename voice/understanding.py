"""Matching what a caller said to an assistant's knowledge entries, and deciding what to do.

Each entry is indexed by its question, its answer and the owner's alternative phrasings, two
ways:

* **semantic**: sentence-embedding cosine similarity (any ``embed(texts) -> unit vectors``);
  an entry scores its best phrasing (question or alternative), or its answer a little lower;
* **lexical**: on content words (lower-cased, contractions and filler removed, a small
  synonym table applied — ``e-bike``/``ebike``/``electric bike``, ``fix``/``repair``/
  ``service``, ... — then Snowball-stemmed; an unknown word close in spelling to a known one
  counts as it), the mean of two IDF-weighted shares: of the caller's words that the entry has
  (in its question or alternatives; words only in its answer count half), and of the words of
  the entry's best phrasing that the caller said.  A word no entry knows weighs nearly as
  much as the rarest known one, so "Do you sell pizza?" does not match the entry that says
  "sell"; a long, rambling question still matches an entry whose words it contains.

The two are blended into one score per entry.  :func:`decide` answers only when the best entry
scores high enough *and* leads the runner-up by a margin; when two entries are close it asks
which one the caller means; below the floor it declines.  A wrong answer is worse than a
question.

Nothing here loads a model: :class:`KnowledgeIndex` is given the embedder.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

try:  # pure Python, part of the offline extra
    import snowballstemmer

    _STEMMER: Any = snowballstemmer.stemmer("english")
except ImportError:  # pragma: no cover - a crude stand-in keeps the engine working
    _STEMMER = None


# ---------------------------------------------------------------------------- normalising

#: Multi-word and spelling variants, rewritten before splitting into words (order matters).
PHRASES: tuple[tuple[str, str], ...] = (
    (
        r"\b(e[\s-]?bikes?|electric(al)?[\s-]+(bikes?|bicycles?|cycles?)|pedelecs?)\b",
        " ebike bike ",
    ),
    (r"\bhow much\b", " price "),
    (r"\bopening (hours|times)\b", " open hours "),
    (r"\bcheck[\s-]?in\b", " checkin "),
    (r"\bcheck[\s-]?out\b", " checkout "),
    (r"\bwi[\s-]?fi\b", " wifi "),
    (r"\bgluten[\s-]?free\b", " gluten "),
    (r"\b(take[\s-]?(away|out)|to go)\b", " takeaway "),
    (r"\bcar[\s-]?park\b", " parking "),
    (r"\bmoney back\b", " refund "),
    (r"\btune[\s-]?ups?\b", " service "),
    (r"\bflat (tyre|tire)s?\b", " puncture "),
    (r"\b(public|bank) holidays?\b", " holiday "),
    (r"\bwheel[\s-]?chairs?\b", " wheelchair "),
    (r"\bcredit cards?\b|\bdebit cards?\b", " card "),
)

#: One word -> its canonical word (applied before stemming).  Deliberately small and
#: generic: variants of spelling and everyday synonyms, not the wording of any one assistant.
SYNONYMS: dict[str, str] = {
    # mending things
    "fix": "repair",
    "fixing": "repair",
    "fixed": "repair",
    "mend": "repair",
    "mending": "repair",
    "service": "repair",
    "servicing": "repair",
    "serviced": "repair",
    "maintenance": "repair",
    "broken": "repair",
    # prices
    "cost": "price",
    "costs": "price",
    "charge": "price",
    "charges": "price",
    "fee": "price",
    "fees": "price",
    "rate": "price",
    "rates": "price",
    "pricing": "price",
    "prices": "price",
    "expensive": "price",
    "cheap": "price",
    # times
    "opening": "open",
    "opened": "open",
    "close": "open",
    "closing": "open",
    "closed": "open",
    # appointments
    "appointment": "book",
    "appointments": "book",
    "booking": "book",
    "reservation": "book",
    "reservations": "book",
    "reserve": "book",
    "schedule": "book",
    "slot": "book",
    "reschedule": "cancel",
    "cancellation": "cancel",
    # renting
    "rental": "rent",
    "rentals": "rent",
    "hire": "rent",
    "borrow": "rent",
    "lend": "rent",
    "loan": "rent",
    # things and people
    "bicycle": "bike",
    "bicycles": "bike",
    "cycle": "bike",
    "tyre": "tire",
    "tyres": "tire",
    "kid": "child",
    "kids": "child",
    "children": "child",
    "baby": "child",
    "toddler": "child",
    "dog": "pet",
    "dogs": "pet",
    "cat": "pet",
    "animal": "pet",
    "animals": "pet",
    "teeth": "tooth",
    "dentist": "dental",
    "toothache": "tooth pain",
    "ache": "pain",
    "hurts": "pain",
    "hurt": "pain",
    "sore": "pain",
    "urgent": "emergency",
    "asap": "emergency",
    "internet": "wifi",
    "veggie": "vegetarian",
    "coeliac": "gluten",
    "celiac": "gluten",
    "delivery": "deliver",
    "delivered": "deliver",
    "accessible": "wheelchair",
    "accessibility": "wheelchair",
    "disabled": "wheelchair",
    "guarantee": "warranty",
    "guaranteed": "warranty",
    "discount": "discount",
    "deal": "discount",
    "deals": "discount",
    "coupon": "discount",
    "promotion": "discount",
    "cash": "pay",
    "payment": "pay",
    "payments": "pay",
    "insured": "insurance",
    "located": "location",
    "address": "location",
    "directions": "location",
    "where": "location",
    "restroom": "toilet",
    "bathroom": "toilet",
    "loo": "toilet",
    "refunds": "refund",
}

#: Words that carry no topic.
STOPWORDS = frozenset(
    """
    a about above after again all also am an and any anyone anything are as at be been
    before being below between both but by can could did do does doing done down during
    each else ever few for from further get gets getting go going got had has have having
    he her here hers herself him himself his how i if in into is it its itself just know let
    like me might more most much must my myself need needs no nor not now of off on once
    only or other ought our ours ourselves out over own please really same say see shall
    she should so some such tell than thank thanks that the their theirs them themselves
    then there these they this those through to too under until up us very want wanted was
    we well were what whats when which while who whom why will wish with wonder wondering
    would you your yours yourself yourselves hi hello hey hiya um uh er erm hmm ok okay yeah
    yes yep sure right quick question guys folks maybe perhaps actually basically kind sort
    something thing things possible able way lot bit quite sorry excuse
    """.split()
)

_CONTRACTIONS = (
    (re.compile(r"n[’']t\b"), " not"),
    (re.compile(r"[’'](s|re|m|ll|d|ve)\b"), ""),
)
_WORD = re.compile(r"[a-z0-9]+")
_PHRASES = tuple((re.compile(p), r) for p, r in PHRASES)


def _stem(word: str) -> str:
    if _STEMMER is not None:
        return _STEMMER.stemWord(word)
    return word[:-1] if len(word) > 3 and word.endswith("s") else word  # pragma: no cover


def terms(text: str) -> list[str]:
    """Content words of ``text``, normalised and stemmed, in order (duplicates kept)."""
    text = text.lower()
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    out: list[str] = []
    for word in _WORD.findall(text):
        for canonical in SYNONYMS.get(word, word).split():
            if canonical in STOPWORDS:
                continue
            out.append(_stem(canonical))
    return out


# ---------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class Entry:
    """A knowledge entry as the matcher sees it."""

    question: str
    answer: str
    alternatives: tuple[str, ...] = ()


def as_entry(item: Any) -> Entry:
    """``(question, answer)``, ``(question, answer, alternatives)`` or an object with those
    attributes -> :class:`Entry`."""
    if isinstance(item, Entry):
        return item
    if isinstance(item, tuple | list):
        question, answer = str(item[0]), str(item[1])
        alternatives = item[2] if len(item) > 2 else ()
    else:
        question, answer = str(item.question), str(item.answer)
        alternatives = getattr(item, "alternatives", ()) or ()
    return Entry(question, answer, tuple(str(a) for a in alternatives if str(a).strip()))


def entries_of(knowledge: Iterable[Any]) -> tuple[Entry, ...]:
    return tuple(as_entry(item) for item in knowledge)


_LEADING = frozenset(
    """what whats when where which who how why do does did can could is are was were will would
    should may might i we you your our my me us there it its the a an any have has much many
    long often tell please much""".split()
)


def topic_of(entry: Entry) -> str:
    """A short spoken name for an entry: its question without the leading question words
    ("What are your opening hours?" -> "opening hours")."""
    words = re.findall(r"[\w’'-]+", entry.question)
    start = 0
    while start < len(words) - 1 and words[start].lower() in _LEADING:
        start += 1
    topic = " ".join(words[start:]).strip()
    return topic or entry.question.strip().rstrip("?.!")


def spoken_question(entry: Entry) -> str:
    """The entry's question as part of a sentence ("What are ...?" -> "what are ...")."""
    text = entry.question.strip().rstrip("?.! ")
    if len(text) > 1 and not text[:2].isupper():  # keep "EU ..." and "I ..."
        if not (text[0] == "I" and (len(text) == 1 or not text[1].isalpha())):
            text = text[0].lower() + text[1:]
    return text


# ---------------------------------------------------------------------------- the index


@dataclass
class Scores:
    """Per-entry scores for one query (arrays aligned with the entries)."""

    semantic: np.ndarray
    lexical: np.ndarray
    combined: np.ndarray


@dataclass(frozen=True)
class Weights:
    """How the two signals are blended and read (see :func:`decide`)."""

    semantic: float = 0.5
    lexical: float = 0.5
    #: An answer's similarity counts this much less than a question's.
    answer_penalty: float = 0.0
    #: Lexical credit for a word found only in the answer.
    answer_word: float = 0.5
    #: A word no entry knows weighs this share of the rarest known word's weight.
    unknown_word: float = 0.7


class KnowledgeIndex:
    """Vectors and term statistics of one knowledge set (built once, queried per turn)."""

    def __init__(self, entries: Sequence[Entry], embedder: Any, weights: Weights | None = None):
        self.entries = tuple(entries)
        self.weights = weights or Weights()
        self._embedder = embedder
        texts: list[str] = []
        owners: list[int] = []
        answer_rows: list[int] = []
        for i, entry in enumerate(self.entries):
            for phrasing in (entry.question, *entry.alternatives):
                texts.append(phrasing)
                owners.append(i)
            answer_rows.append(len(texts))
            texts.append(entry.answer)
            owners.append(-1 - i)  # an answer row
        self._owners = np.array(owners, dtype=np.int64)
        self._vectors = embedder.embed(texts) if texts else np.zeros((0, 384), np.float32)
        # Lexical side: per entry, the words of its phrasings and of its answer.
        self._asked: list[set[str]] = []
        self._told: list[set[str]] = []
        self._phrasings: list[list[set[str]]] = []
        df: dict[str, int] = {}
        for entry in self.entries:
            asked: set[str] = set()
            phrasings = [set(terms(p)) for p in (entry.question, *entry.alternatives)]
            for phrasing in phrasings:
                asked.update(phrasing)
            self._phrasings.append([p for p in phrasings if p])
            told = set(terms(entry.answer)) - asked
            self._asked.append(asked)
            self._told.append(told)
            for term in asked | told:
                df[term] = df.get(term, 0) + 1
        n = max(len(self.entries), 1)
        self._idf = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        self._unknown_idf = self.weights.unknown_word * math.log(1 + (n + 0.5) / 0.5)
        self._vocabulary = sorted(df)

    def __len__(self) -> int:
        return len(self.entries)

    def _known(self, term: str) -> str:
        """``term``, or the known term it is most likely a misspelling of."""
        if term in self._idf or len(term) < 4 or term.isdigit():
            return term
        close = difflib.get_close_matches(term, self._vocabulary, n=1, cutoff=0.8)
        return close[0] if close else term

    def lexical(self, text: str) -> np.ndarray:
        query = list(dict.fromkeys(self._known(t) for t in terms(text)))
        out = np.zeros(len(self.entries), dtype=np.float32)
        if not query:
            return out
        weights = [self._idf.get(t, self._unknown_idf) for t in query]
        total = sum(weights)
        for i in range(len(self.entries)):
            asked, told = self._asked[i], self._told[i]
            got = 0.0
            for term, weight in zip(query, weights, strict=True):
                if term in asked:
                    got += weight
                elif term in told:
                    got += weight * self.weights.answer_word
            said = set(query)
            covered = 0.0
            for phrasing in self._phrasings[i]:
                own = sum(self._idf[t] for t in phrasing)
                covered = max(covered, sum(self._idf[t] for t in phrasing & said) / own)
            out[i] = (got / total + covered) / 2
        return out

    def semantic(self, text: str, vector: np.ndarray | None = None) -> np.ndarray:
        if vector is None:
            vector = self._embedder.embed([text])[0]
        sims = self._vectors @ vector
        out = np.full(len(self.entries), -1.0, dtype=np.float32)
        for row, owner in enumerate(self._owners):
            if owner >= 0:
                out[owner] = max(out[owner], sims[row])
            else:
                i = -1 - owner
                out[i] = max(out[i], sims[row] - self.weights.answer_penalty)
        return out

    def score(self, text: str) -> Scores:
        semantic = self.semantic(text)
        lexical = self.lexical(text)
        w = self.weights
        combined = w.semantic * semantic + w.lexical * lexical
        return Scores(semantic, lexical, combined.astype(np.float32))


# ---------------------------------------------------------------------------- deciding


@dataclass(frozen=True)
class Thresholds:
    """The decision rule's numbers (on the blended score, roughly 0..1)."""

    #: Answer when the best entry scores at least this ...
    answer: float = 0.5
    #: ... and leads the runner-up by at least this;
    margin: float = 0.08
    #: or when it scores at least ``floor`` and leads the runner-up by this much.
    lead: float = 0.25
    #: Below this nothing fits: decline (and name a few topics).
    floor: float = 0.38


@dataclass(frozen=True)
class Decision:
    """What to do with one utterance: ``answer`` (``entry``), ``clarify`` (between the
    ``candidates``) or ``decline``."""

    kind: str
    entry: int = -1
    score: float = 0.0
    candidates: tuple[int, ...] = ()
    runner_up: int = -1
    runner_up_score: float = 0.0
    detail: dict[str, float] = field(default_factory=dict)
    #: The best few entries, best first.
    ranking: tuple[int, ...] = ()


def decide(scores: Scores, thresholds: Thresholds) -> Decision:
    combined = scores.combined
    if len(combined) == 0:
        return Decision("decline")
    order = np.argsort(-combined, kind="stable")
    best = int(order[0])
    s1 = float(combined[best])
    second = int(order[1]) if len(order) > 1 else -1
    s2 = float(combined[second]) if second >= 0 else 0.0
    detail = {
        "semantic": round(float(scores.semantic[best]), 3),
        "lexical": round(float(scores.lexical[best]), 3),
    }
    common = {
        "score": s1,
        "runner_up": second,
        "runner_up_score": s2,
        "detail": detail,
        "ranking": tuple(int(i) for i in order[:5]),
    }
    if s1 < thresholds.floor:
        return Decision("decline", entry=best, **common)
    if (s1 >= thresholds.answer and s1 - s2 >= thresholds.margin) or s1 - s2 >= thresholds.lead:
        return Decision("answer", entry=best, **common)
    if second >= 0 and s2 >= thresholds.floor and s1 - s2 < thresholds.margin:
        return Decision("clarify", entry=best, candidates=(best, second), **common)
    # Fits a little, and no rival: ask whether that is what the caller means.
    return Decision("clarify", entry=best, candidates=(best,), **common)


# ---------------------------------------------------------------------------- follow-ups

CLARIFY_LEAD = "Do you mean"

_ORDINALS = (
    (re.compile(r"\b(first|former|1st|one before|top)\b|\bnumber one\b|\bthe one\b"), 0),
    (re.compile(r"\b(second|latter|last|2nd|other one|other)\b|\bnumber two\b"), 1),
)
_YES = re.compile(r"^\W*(yes|yeah|yep|yup|correct|right|exactly|sure|please|that one|that's it)\b")
_NO = re.compile(r"^\W*(no|nope|neither|none|not really|wrong)\b")


def clarification_text(entries: Sequence[Entry], candidates: Sequence[int]) -> str:
    named = [spoken_question(entries[i]) for i in candidates]
    if len(named) == 1:
        return f"{CLARIFY_LEAD}: {named[0]}?"
    return f"{CLARIFY_LEAD}: {named[0]}, or: {named[1]}?"


def pending_candidates(history: Sequence[dict[str, str]], entries: Sequence[Entry]) -> list[int]:
    """The entries the assistant's last line asked the caller to choose between, in the order
    named ([] when the last line was not such a question).  Stateless: read back from the
    history, so it survives any number of calls sharing one engine."""
    last = next((h for h in reversed(history) if h.get("role") == "assistant"), None)
    if last is None or not last.get("content", "").startswith(CLARIFY_LEAD):
        return []
    said = last["content"]
    found = []
    for i, entry in enumerate(entries):
        at = said.find(spoken_question(entry))
        if at >= 0:
            found.append((at, i))
    return [i for _, i in sorted(found)][:2]


def resolve_follow_up(
    text: str, candidates: Sequence[int], index: KnowledgeIndex, scores: Scores
) -> int | None:
    """The candidate a short reply to a clarification question picks, if it is clear."""
    lowered = text.lower().strip()
    words = _WORD.findall(lowered)
    if not candidates or len(words) > 8:
        return None
    if len(candidates) == 1:
        if _YES.search(lowered):
            return candidates[0]
        return None
    if _NO.search(lowered) and not any(p.search(lowered) for p, _ in _ORDINALS):
        return None
    for pattern, position in _ORDINALS:
        if pattern.search(lowered) and position < len(candidates):
            return candidates[position]
    # A fragment naming one of them ("holidays", "the electric one").
    lex = [float(scores.lexical[i]) for i in candidates]
    com = [float(scores.combined[i]) for i in candidates]
    best = int(np.argmax(com))
    other = 1 - best
    if lex[best] > lex[other] or com[best] - com[other] >= 0.05:
        return candidates[best]
    return None
