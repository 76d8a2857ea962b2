"""Validation of what a widget renders on other people's pages."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
HOST_RE = re.compile(
    r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)
IPV6_RE = re.compile(r"^\[[0-9a-f:.]+\]$")
DEFAULT_PORTS = {"http": 80, "https": 443}
CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def validate_color(value: str) -> str:
    """Only #RGB or #RRGGBB: nothing that could escape a CSS declaration."""
    if not isinstance(value, str) or not COLOR_RE.match(value):
        raise ValidationError("Must be a hex colour like #RGB or #RRGGBB.")
    return value


def validate_plain_text(value: str, *, multiline: bool = False) -> str:
    pattern = CONTROL_RE if multiline else re.compile(r"[\x00-\x1f\x7f]")
    if pattern.search(value):
        raise ValidationError("Must be plain text without control characters.")
    return value


def normalize_origin(value: str) -> str:
    """`scheme://host[:port]`, lower case, default port dropped; anything else is refused."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("Origin must be a non-empty string.")
    raw = value.strip()
    if any(c in raw for c in "*?#@\\ ") or CONTROL_RE.search(raw):
        raise ValidationError(
            f"{raw!r} is not an exact origin (no wildcards, paths or credentials)."
        )
    try:
        parts = urlsplit(raw.lower())
        port = parts.port
    except ValueError as exc:
        raise ValidationError(f"{raw!r} is not a valid origin.") from exc
    if parts.scheme not in DEFAULT_PORTS:
        raise ValidationError(f"{raw!r} must start with http:// or https://.")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValidationError(f"{raw!r} must be scheme://host[:port] with no path.")
    if raw.endswith("/"):
        raise ValidationError(f"{raw!r} must be scheme://host[:port] with no trailing slash.")
    host = parts.hostname or ""
    netloc_host = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    if not (HOST_RE.match(host) or IPV6_RE.match(netloc_host)):
        raise ValidationError(f"{raw!r} has an invalid host.")
    if port is not None and port != DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{netloc_host}:{port}"
    return f"{parts.scheme}://{netloc_host}"
