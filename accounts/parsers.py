"""The API's JSON parser: bounded in size and depth, and strict about what text can be stored.

DRF's own JSONParser hands the body to `json.load`, whose recursive scanner turns a deeply
nested document into a RecursionError (a 500 with a traceback), reads however much the client
sends, and accepts strings that no database or encoder can keep: JSON escapes can spell an
unpaired UTF-16 surrogate (`"\\ud800"`: valid JSON, not valid Unicode; the row is stored and
every later read fails to encode it) or a NUL (refused by PostgreSQL). This parser refuses all
of those with a 400 (413 for size) before any view sees the data.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from rest_framework import exceptions
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer

MAX_JSON_DEPTH = 32

# A JSON string literal; possessive so that a long or unterminated string cannot backtrack.
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
# What a str may not contain to be stored and sent back: NUL, and lone surrogates (a pair
# written as two escapes is joined by the decoder into one character, so it never matches).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "Contains a NUL character or an unpaired UTF-16 surrogate: not storable text."
UNSTORABLE_KEY_MESSAGE = (
    "A key contains a NUL character or an unpaired UTF-16 surrogate: not storable text."
)


def json_depth(text: str) -> int:
    """The deepest nesting of arrays/objects in a JSON text, computed without recursion.

    Brackets inside string literals are removed first; the depth is then the largest running
    sum of +1 per opening and -1 per closing bracket (C-level `accumulate`, so a 2 MiB body of
    brackets costs milliseconds). Malformed text gives some number; `json.loads` refuses it."""
    brackets = _BRACKETS.findall(_STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def unstorable_text_error(value: Any, path: str = "") -> tuple[str, str] | None:
    """(field path, message) for the first string or key that cannot be stored, else None.

    Recursion is bounded: callers check `json_depth` first."""
    if isinstance(value, str):
        if UNSTORABLE.search(value):
            return (path or "non_field_errors", UNSTORABLE_MESSAGE)
    elif isinstance(value, dict):
        for key, item in value.items():
            if UNSTORABLE.search(key):
                # The key itself is never echoed: it is what cannot be encoded.
                return (path or "non_field_errors", UNSTORABLE_KEY_MESSAGE)
            found = unstorable_text_error(item, _join(path, key))
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable_text_error(item, _join(path, index))
            if found:
                return found
    return None


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


class BoundedJSONParser(BaseParser):
    """application/json, at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes and MAX_JSON_DEPTH levels,
    UTF-8, no NaN/Infinity, every string and key storable."""

    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            # Mapped to a 413 by accounts.errors (the middleware usually answers first).
            raise RequestDataTooBig("Request body exceeded settings.DATA_UPLOAD_MAX_MEMORY_SIZE.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise exceptions.ParseError("Malformed JSON: the body is not valid UTF-8.") from exc
        if json_depth(text) > MAX_JSON_DEPTH:
            raise exceptions.ParseError(
                f"Malformed JSON: nested deeper than {MAX_JSON_DEPTH} levels."
            )
        try:
            data = json.loads(text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as exc:
            # exc.msg names the problem, not the content (the content is what is hostile).
            raise exceptions.ParseError(
                f"Malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from exc
        except (ValueError, RecursionError) as exc:  # NaN/Infinity, integers over 4300 digits
            raise exceptions.ParseError(f"Malformed JSON: {exc}.") from exc
        found = unstorable_text_error(data)
        if found:
            field, message = found
            raise exceptions.ValidationError({field: [message]})
        return data
