"""Typed values out of what a caller said, spoken forms included: pure functions, no Django.

Transcripts are speech-to-text output, so values arrive as words more often than as
symbols: "ada at example dot com", "five five five one two three four", "twenty five",
"next Tuesday". Each parser takes one piece of text and returns the value or None; none of
them guesses beyond the forms listed in its docstring.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from datetime import date, timedelta

_WORD = re.compile(r"[0-9]+(?:[.,][0-9]+)*|[a-z0-9]+(?:['@_+-][a-z0-9]+)*")

UNITS = {
    "zero": 0,
    "oh": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
ORDINALS = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
    "seventeenth": 17,
    "eighteenth": 18,
    "nineteenth": 19,
    "twentieth": 20,
    "thirtieth": 30,
}


def words(text: str) -> list[str]:
    """Lower-case tokens; numbers keep their separators ("1,200", "3.5")."""
    return _WORD.findall(text.lower())


# ------------------------------------------------------------------------------ numbers


def _number_run(tokens: list[str]) -> tuple[float | None, int]:
    """The number spelled by the tokens at the start of ``tokens`` and how many it used."""
    total, current, used, seen = 0, 0, 0, False
    sign = 1
    i = 0
    if tokens and tokens[0] in ("minus", "negative"):
        sign, i = -1, 1
    while i < len(tokens):
        token = tokens[i]
        if token in UNITS and not (token == "oh" and not seen):
            current += UNITS[token]
        elif token in TENS:
            current += TENS[token]
        elif token == "hundred" and seen:
            current = max(current, 1) * 100
        elif token in SCALES and token != "hundred" and seen:
            total += max(current, 1) * SCALES[token]
            current = 0
        elif (
            token == "and"
            and seen
            and i + 1 < len(tokens)
            and (tokens[i + 1] in UNITS or tokens[i + 1] in TENS)
        ):
            pass  # "one hundred and five"
        elif token == "a" and not seen and i + 1 < len(tokens) and tokens[i + 1] in SCALES:
            current = 1  # "a hundred"
            seen = True
            i += 1
            continue
        else:
            break
        seen = True
        i += 1
        used = i
    if not seen:
        return None, 0
    value: float = total + current
    # "three point five", "zero point two five"
    if used + 1 < len(tokens) and tokens[used] == "point" and tokens[used + 1] in UNITS:
        digits = ""
        j = used + 1
        while j < len(tokens) and tokens[j] in UNITS and UNITS[tokens[j]] < 10:
            digits += str(UNITS[tokens[j]])
            j += 1
        if digits:
            value = float(f"{int(value)}.{digits}")
            used = j
    return sign * value, used


_NUMBER_TOKEN = re.compile(r"[0-9]+(?:,[0-9]{3})*(?:\.[0-9]+)?|[a-z]+")


def parse_number(text: str) -> float | int | None:
    """The first number in ``text``: written ("42", "3.5", "1,200", "-4") or in words
    ("twenty five", "one hundred and five", "a thousand", "three point five", "minus
    two"). Whole numbers come back as ``int``."""
    # A minus sign before digits is a sign; any other hyphen joins words ("twenty-five").
    lowered = re.sub(r"(?<![\w.])[-\u2212](?=\d)", " minus ", text.lower())
    tokens = _NUMBER_TOKEN.findall(lowered.replace("-", " "))
    for index, token in enumerate(tokens):
        if token[0].isdigit():
            negative = index > 0 and tokens[index - 1] in ("minus", "negative")
            value = float(token.replace(",", ""))
            value = -value if negative else value
            return int(value) if value.is_integer() and "." not in token else value
        value, used = _number_run(tokens[index:])
        if used:
            return int(value) if float(value).is_integer() else value
    return None


def parse_integer(text: str) -> int | None:
    """The first whole number in ``text`` (see ``parse_number``); a fraction is not one."""
    value = parse_number(text)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


# ------------------------------------------------------------------------------ yes / no

YES = {"yes", "yeah", "yep", "yup", "sure", "absolutely", "definitely", "certainly", "correct"}
YES_PHRASES = ("of course", "that's right", "that is right", "please do", "i do", "i would")
NO = {"no", "nope", "nah", "never", "not", "don't", "dont", "negative"}
NO_PHRASES = ("no thanks", "no thank you", "i don't", "i do not", "not really", "i wouldn't")


def parse_boolean(text: str) -> bool | None:
    """Yes or no, from the first answer word: "yes", "yeah", "sure", "of course" ... ->
    True; "no", "nope", "not really", "I don't" ... -> False; neither -> None."""
    lowered = " ".join(words(text))
    hits: list[tuple[int, bool]] = []
    for phrase in NO_PHRASES:
        if (at := _find_phrase(lowered, phrase)) >= 0:
            hits.append((at, False))
    for phrase in YES_PHRASES:
        if (at := _find_phrase(lowered, phrase)) >= 0:
            hits.append((at, True))
    position = 0
    for token in lowered.split(" "):
        if token in YES:
            hits.append((position, True))
        elif token in NO:
            hits.append((position, False))
        position += len(token) + 1
    if not hits:
        return None
    # The earliest answer wins; at one position a negative phrase ("i don't") beats "i do".
    hits.sort(key=lambda hit: (hit[0], hit[1]))
    return hits[0][1]


def _find_phrase(text: str, phrase: str) -> int:
    match = re.search(rf"(?<![a-z0-9']){re.escape(phrase)}(?![a-z0-9'])", text)
    return match.start() if match else -1


# ------------------------------------------------------------------------------ email

_EMAIL = re.compile(r"[a-z0-9][a-z0-9._%+-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}")
_CONNECTORS = {"dot": ".", "period": ".", "underscore": "_", "dash": "-", "hyphen": "-"}


def parse_email(text: str) -> str | None:
    """An email address, written ("ada@example.com") or spoken ("ada at example dot com",
    "ada dot lovelace at mail dot example dot co dot uk", "a d a at example dot com",
    "ada underscore l at example dot org")."""
    lowered = text.lower()
    written = _EMAIL.search(lowered)
    if written:
        return written.group(0)
    # Words with an apostrophe ("it's") are kept whole so they end a spelled-out run. A dot
    # inside a word is a spoken "dot": speech-to-text writes "ada at example.com".
    tokens = re.findall(r"[a-z0-9']+", re.sub(r"(?<=[a-z0-9])\.(?=[a-z0-9])", " dot ", lowered))
    for at, token in enumerate(tokens):
        if token != "at" or at == 0:
            continue
        domain = _dotted_after(tokens, at + 1)
        local = _local_before(tokens, at)
        if domain and local:
            candidate = f"{local}@{domain}"
            if _EMAIL.fullmatch(candidate):
                return candidate
    return None


def _dotted_after(tokens: list[str], start: int) -> str | None:
    """``example dot co dot uk`` from ``start``: a name, then one or more ``dot name``."""
    if start >= len(tokens) or tokens[start] in _CONNECTORS:
        return None
    parts, i = [tokens[start]], start + 1
    while i + 1 < len(tokens) and _CONNECTORS.get(tokens[i]) in (".", "-"):
        parts.append(_CONNECTORS[tokens[i]])
        parts.append(tokens[i + 1])
        i += 2
    text = "".join(parts)
    return text if "." in text else None


def _unit_before(tokens: list[str], end: int) -> tuple[str, int]:
    """The word ending at ``end``, or the run of letters spelled one by one ("a d a")."""
    if len(tokens[end]) != 1:
        return tokens[end], end
    start = end
    while start - 1 >= 0 and len(tokens[start - 1]) == 1:
        start -= 1
    return "".join(tokens[start : end + 1]), start


def _local_before(tokens: list[str], at: int) -> str | None:
    """The local part ending just before ``at``: ``ada``, ``ada dot lovelace``, letters
    spelled one by one (``a d a``), joined by "dot", "underscore", "dash"."""
    text, start = _unit_before(tokens, at - 1)
    while start - 2 >= 0 and tokens[start - 1] in _CONNECTORS:
        previous, start_before = _unit_before(tokens, start - 2)
        text = previous + _CONNECTORS[tokens[start - 1]] + text
        start = start_before
    return text if "'" not in text else None


# ------------------------------------------------------------------------------ phone

DIGIT_WORDS = {name: str(value) for name, value in UNITS.items() if value < 10}
DIGIT_WORDS["o"] = "0"
REPEATS = {"double": 2, "triple": 3}
MIN_PHONE_DIGITS, MAX_PHONE_DIGITS = 7, 15


def parse_phone(text: str) -> str | None:
    """A phone number as its digits (a leading "+" kept): written ("+1 (415) 555-2671",
    "555 1234") or spoken digit by digit ("five five five one two three four", "oh",
    "double five", "plus four four ..."). Needs 7 to 15 digits in one run."""
    tokens = re.findall(r"\+|[a-z]+|[0-9]+", text.lower())
    best: str | None = None
    run, plus, repeat = "", False, 1
    for token in [*tokens, "."]:
        if token == "+" or (token == "plus" and not run):
            plus = True
            continue
        if token.isdigit():
            run += token * repeat if len(token) == 1 else token
            repeat = 1
        elif token in DIGIT_WORDS and (token not in ("o", "oh") or run or repeat > 1):
            run += DIGIT_WORDS[token] * repeat
            repeat = 1
        elif token in REPEATS:
            repeat = REPEATS[token]
        elif token in ("oh", "o"):
            run += "0"
        else:
            if MIN_PHONE_DIGITS <= len(run) <= MAX_PHONE_DIGITS and best is None:
                best = ("+" if plus else "") + run
            run, plus, repeat = "", False, 1
    return best


# ------------------------------------------------------------------------------ dates

WEEKDAYS = {name.lower(): i for i, name in enumerate(calendar.day_name)}
MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS.update({name.lower(): i for i, name in enumerate(calendar.month_abbr) if name})
MONTHS["sept"] = 9
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


def _day_number(token: str) -> int | None:
    match = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?", token)
    if match:
        return int(match.group(1))
    return ORDINALS.get(token)


def _ordinal_run(tokens: list[str], i: int) -> tuple[int | None, int]:
    """A day of the month at ``tokens[i]``: "3", "3rd", "third", "twenty first"."""
    if i >= len(tokens):
        return None, 0
    if tokens[i] in TENS and i + 1 < len(tokens) and tokens[i + 1] in ORDINALS:
        return TENS[tokens[i]] + ORDINALS[tokens[i + 1]], 2
    day = _day_number(tokens[i])
    return (day, 1) if day else (None, 0)


def _year_after(tokens: list[str], i: int) -> int | None:
    if i < len(tokens) and re.fullmatch(r"\d{4}", tokens[i]):
        return int(tokens[i])
    return None


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_date(text: str, today: date) -> date | None:
    """A date relative to ``today`` (the call's date): "today", "tomorrow", "the day after
    tomorrow", "yesterday", "in three days", "in two weeks", "Tuesday" / "this Tuesday" /
    "next Tuesday" (the first such day after today), "March 3rd", "on the 3rd of March",
    "3 March 2027", "2027-03-03". A month and day without a year is the next one on or after
    today."""
    iso = _ISO_DATE.search(text)
    if iso:
        return _safe_date(*(int(g) for g in iso.groups()))
    tokens = re.findall(r"[a-z]+|\d+(?:st|nd|rd|th)?", text.lower())
    joined = " ".join(tokens)
    if "day after tomorrow" in joined:
        return today + timedelta(days=2)
    for i, token in enumerate(tokens):
        if token == "today" or token == "tonight":
            return today
        if token == "tomorrow":
            return today + timedelta(days=1)
        if token == "yesterday":
            return today - timedelta(days=1)
        if token == "in" and i + 2 < len(tokens) + 1:
            amount, used = _number_run(tokens[i + 1 :])
            if tokens[i + 1 : i + 2] == ["a"]:
                amount, used = 1, 1
            if used and i + 1 + used < len(tokens):
                unit = tokens[i + 1 + used]
                if unit in ("day", "days"):
                    return today + timedelta(days=int(amount))
                if unit in ("week", "weeks"):
                    return today + timedelta(weeks=int(amount))
        if token in WEEKDAYS:
            ahead = (WEEKDAYS[token] - today.weekday()) % 7 or 7
            if i > 0 and tokens[i - 1] == "last":
                return today - timedelta(days=(today.weekday() - WEEKDAYS[token]) % 7 or 7)
            return today + timedelta(days=ahead)
        if token in MONTHS:
            month = MONTHS[token]
            # "March 3rd", "March the third"
            j = i + 1 + (tokens[i + 1 : i + 2] == ["the"])
            day, used = _ordinal_run(tokens, j)
            year = _year_after(tokens, j + used) if day else None
            if day is None and i >= 1:
                # "3rd of March", "the third of March", "3 March"
                k = i - 1 - (tokens[i - 1] == "of")
                for start in (k - 1, k):
                    if start < 0:
                        continue
                    candidate, used = _ordinal_run(tokens, start)
                    if candidate and start + used == k + 1:
                        day = candidate
                        break
                year = _year_after(tokens, i + 1)
            if day is None:
                continue
            if year is not None:
                return _safe_date(year, month, day)
            found = _safe_date(today.year, month, day)
            if found is not None and found < today:
                found = _safe_date(today.year + 1, month, day)
            return found
    return None


# ------------------------------------------------------------------------------ enums


def parse_enum(text: str, values: Iterable[str]) -> str | None:
    """The allowed value the text mentions (whole words, any case; a plural "s" allowed).
    Several: the one said last (callers correct themselves: "basic, no, premium")."""
    lowered = text.lower()
    found: tuple[int, str] | None = None
    for value in values:
        pattern = rf"(?<![a-z0-9]){re.escape(value.lower())}(?:s|es)?(?![a-z0-9])"
        for match in re.finditer(pattern, lowered):
            if found is None or match.start() > found[0]:
                found = (match.start(), value)
    return found[1] if found else None
