"""Opaque object ids shaped like the API documents' (24 lower-case hex characters)."""

from __future__ import annotations

import re
import secrets

OBJECT_ID_RE = re.compile(r"^[0-9a-f]{24}$")


def new_object_id() -> str:
    return secrets.token_hex(12)


def is_object_id(value: object) -> bool:
    return isinstance(value, str) and bool(OBJECT_ID_RE.match(value))


class ObjectIdConverter:
    """Path converter `<oid:name>`: only a well-formed id reaches a view, so a malformed one
    (a NUL, a quote, anything) is a plain 404 from the URL resolver, with no database query."""

    regex = "[0-9a-f]{24}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value
