"""How well the offline reply engine understands what people ask.

The set (``bench/data/understanding/*.json``, one file per business) has knowledge entries,
paraphrased questions labelled with the entry that answers them, and questions the knowledge
cannot answer.  Each question goes through ``KnowledgeBrain.understand`` (the same decision
the engine takes in a call) and is counted as:

* right: answered with the labelled entry;
* wrong: answered with another entry (for an unanswerable question: answered at all);
* clarified: the engine asked which entry was meant (not wrong; ``clarified_right`` says how
  often the labelled entry was among those named, so one reply would settle it);
* declined: fell back, naming a few topics.

Questions alternate between a ``dev`` half (the one looked at while choosing the blend and the
thresholds) and a ``held-out`` half; sets marked ``written_after_freeze`` (a whole business,
written after the matcher was frozen) form the ``fresh`` split.  Figures are given for all,
each split and each business.

``--speech`` first speaks every question with espeak-ng in two voices and transcribes it with
the real faster-whisper provider (as in a call), then matches the transcript.  That is slow on a
small machine: ``--limit N`` takes N questions spread evenly over the set (labelled and
unanswerable alike), each in both voices.

    python bench/understanding.py [--speech] [--limit N] [--no-alternatives] [--verbose]

Prints the figures and the confusion cases; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voice.config import KnowledgeEntry  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "understanding"
SPEECH_VOICES = ("en-us", "en-f3")
#: ``dev``/``held-out``: alternate questions of the sets written before the matcher was tuned
#: (only ``dev`` was looked at while tuning); ``fresh``: sets written after it was frozen.
SPLITS = ("dev", "held-out", "fresh")


@dataclass
class Case:
    business: str
    text: str
    label: str | None  # entry id; None: the knowledge cannot answer it
    split: str
    heard: str | None = None  # the transcript (speech mode)
    voice: str | None = None


def load() -> tuple[dict[str, list[KnowledgeEntry]], dict[str, list[str]], list[Case]]:
    knowledge: dict[str, list[KnowledgeEntry]] = {}
    ids: dict[str, list[str]] = {}
    cases: list[Case] = []
    for path in sorted(DATA.glob("*.json")):
        data = json.loads(path.read_text())
        name = path.stem
        entries = data["entries"]
        knowledge[name] = [
            KnowledgeEntry(e["question"], e["answer"], tuple(e.get("alternatives", ())))
            for e in entries
        ]
        ids[name] = [e["id"] for e in entries]
        known = set(ids[name])
        fresh = data.get("written_after_freeze", False)
        for i, q in enumerate(data["questions"]):
            if q["entry"] not in known:
                raise SystemExit(f"{path.name}: unknown entry {q['entry']!r}")
            split = "fresh" if fresh else "dev" if i % 2 == 0 else "held-out"
            cases.append(Case(name, q["text"], q["entry"], split))
        for i, text in enumerate(data["unanswerable"]):
            split = "fresh" if fresh else "dev" if i % 2 == 0 else "held-out"
            cases.append(Case(name, text, None, split))
    return knowledge, ids, cases


def spread(cases: list[Case], limit: int | None) -> list[Case]:
    if not limit or limit >= len(cases):
        return cases
    step = len(cases) / limit
    return [cases[int(i * step)] for i in range(limit)]


def transcribe_all(cases: list[Case], verbose: bool) -> tuple[list[Case], dict[str, float]]:
    from bench._speech import have_espeak, silence, synthesize
    from voice.providers.stt_whisper import WhisperStt

    if not have_espeak():
        raise SystemExit("--speech needs the espeak-ng command (make test installs it)")
    t0 = time.perf_counter()
    stt = WhisperStt()
    load_s = time.perf_counter() - t0
    heard: list[Case] = []
    stt_s = 0.0
    for case in cases:
        for voice in SPEECH_VOICES:
            pcm = silence(300) + synthesize(case.text, voice) + silence(300)
            t = time.perf_counter()
            text = stt.transcribe_sync(pcm, "en").strip()
            stt_s += time.perf_counter() - t
            if verbose:
                print(f"  [{voice}] {case.text!r} -> {text!r}", flush=True)
            heard.append(Case(case.business, case.text, case.label, case.split, text, voice))
    stt.close()
    return heard, {"stt_load_s": round(load_s, 2), "stt_mean_s": stt_s / max(len(heard), 1)}


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", "", text.lower().replace("-", " ")).split()


def pct(value: object) -> str:
    return f"{value:.1%}" if isinstance(value, float) else str(value)


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def evaluate(cases: list[Case], knowledge, ids, brain) -> tuple[dict[str, object], list[str]]:
    outcome: Counter[tuple[str, str]] = Counter()  # (split, outcome)
    confusions: list[str] = []
    times: list[float] = []
    for case in cases:
        entries = knowledge[case.business]
        text = case.heard if case.heard is not None else case.text
        t = time.perf_counter()
        decision = brain.understand(text, entries, [])
        times.append(time.perf_counter() - t)
        labelled = case.label is not None
        name = {i: ids[case.business][i] for i in range(len(entries))}
        if decision.kind == "answer":
            got = name[decision.entry]
            kind = ("right" if got == case.label else "wrong") if labelled else "answered"
        elif decision.kind == "clarify":
            named = [name[i] for i in decision.candidates]
            kind = "clarified" if not labelled or case.label not in named else "clarified_right"
        else:
            kind = "declined"
        group = "q" if labelled else "u"
        for split in ("all", case.split, case.business):
            outcome[(split, f"{group}:{kind}")] += 1
        if case.heard is not None and _words(case.heard) == _words(case.text):
            outcome[("exact", f"{group}:{kind}")] += 1
        if kind != "right" and not (kind == "declined" and not labelled):
            what = "declined" if decision.kind == "decline" else decision.kind
            if decision.kind == "answer":
                what = f"answered {name[decision.entry]}"
            elif decision.kind == "clarify":
                what = "asked " + " / ".join(name[i] for i in decision.candidates)
            heard = f" (heard {case.heard!r}, {case.voice})" if case.heard is not None else ""
            confusions.append(
                f"{'WRONG ' if kind in ('wrong', 'answered') else ''}{case.business}: "
                f"{case.text!r}{heard} [{case.label or 'unanswerable'}] -> {what} "
                f"({decision.score:.2f} vs {decision.runner_up_score:.2f})"
            )
    figures: dict[str, object] = {}
    for split in ("all", *SPLITS, *knowledge, "exact"):
        q = {
            k: outcome[(split, f"q:{k}")]
            for k in ("right", "wrong", "clarified", "clarified_right", "declined")
        }
        u = {k: outcome[(split, f"u:{k}")] for k in ("answered", "clarified", "declined")}
        nq, nu = sum(q.values()), sum(u.values())
        figures[split] = {
            "questions": nq,
            "right": rate(q["right"], nq),
            "wrong": rate(q["wrong"], nq),
            "clarified": rate(q["clarified"] + q["clarified_right"], nq),
            "clarified_right": rate(q["clarified_right"], nq),
            "missed": rate(q["declined"], nq),
            "unanswerable": nu,
            "declined": rate(u["declined"], nu),
            "not_answered": rate(u["declined"] + u["clarified"], nu),
            "answered_unanswerable": rate(u["answered"], nu),
        }
    times.sort()
    figures["match_ms_p50"] = round(1000 * times[len(times) // 2], 2) if times else None
    return figures, confusions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speech", action="store_true", help="espeak-ng speech through Whisper")
    parser.add_argument("--limit", type=int, default=None, help="questions to use (spread)")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--no-alternatives", action="store_true", help="ignore the entries' alternative phrasings"
    )
    args = parser.parse_args()

    from voice.providers.brain_knowledge import KnowledgeBrain

    knowledge, ids, cases = load()
    if args.no_alternatives:
        knowledge = {b: [e._replace(alternatives=()) for e in v] for b, v in knowledge.items()}
    cases = spread(cases, args.limit)
    extra: dict[str, object] = {}
    if args.speech:
        cases, extra = transcribe_all(cases, args.verbose)
    brain = KnowledgeBrain()
    for entries in knowledge.values():
        brain.index(entries)  # build the indexes outside the timed matches
    figures, confusions = evaluate(cases, knowledge, ids, brain)
    brain.close()

    mode = "speech" if args.speech else "text"
    n_entries = sum(len(v) for v in knowledge.values())
    print(
        f"understanding ({mode}): {len(knowledge)} businesses, {n_entries} entries, "
        f"{len(cases)} utterances"
    )
    for split in ("all", *SPLITS, *knowledge):
        f = {k: "n/a" if v is None else v for k, v in figures[split].items()}
        if not f["questions"] and not f["unanswerable"]:
            continue
        print(
            f"  {split:14s} right {pct(f['right'])}  wrong {pct(f['wrong'])}  clarified "
            f"{pct(f['clarified'])} (right one named {pct(f['clarified_right'])})  missed "
            f"{pct(f['missed'])} of {f['questions']};  unanswerable declined "
            f"{pct(f['declined'])} (not answered {pct(f['not_answered'])}) of {f['unanswerable']}"
        )
    if args.speech:
        exact = figures["exact"]
        share = (exact["questions"] + exact["unanswerable"]) / max(len(cases), 1)
        extra["transcribed_exactly"] = round(share, 4)
        extra["right_when_transcribed_exactly"] = exact["right"]
        print(
            f"  transcribed word for word: {share:.1%} of utterances; of those, right "
            f"{pct(exact['right'])}, wrong {pct(exact['wrong'])} of {exact['questions']}"
        )
    print(f"confusion cases ({len(confusions)}):")
    for line in confusions:
        print("  " + line)
    allf = figures["all"]
    result = {
        "bench": "understanding",
        "mode": mode,
        "businesses": len(knowledge),
        "entries": n_entries,
        "utterances": len(cases),
        "voices": list(SPEECH_VOICES) if args.speech else None,
        "limit": args.limit,
        "alternatives": not args.no_alternatives,
        **{k: allf[k] for k in allf},
        "held_out_right": figures["held-out"]["right"],
        "held_out_wrong": figures["held-out"]["wrong"],
        "held_out_declined": figures["held-out"]["declined"],
        "fresh_right": figures["fresh"]["right"],
        "fresh_wrong": figures["fresh"]["wrong"],
        "fresh_declined": figures["fresh"]["declined"],
        "match_ms_p50": figures["match_ms_p50"],
        **extra,
        "goals": {
            "right": 0.85 if args.speech else 0.9,
            "wrong_max": 0.03,
            "declined": 0.9,
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
