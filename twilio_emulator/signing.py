"""Twilio's request signature (X-Twilio-Signature), computed the way Twilio documents it.

The string to sign is the full URL Twilio requests, followed by every POST parameter sorted by
name (case-sensitive), each as name + value with no delimiters; the signature is the base64
HMAC-SHA1 of that string keyed with the account's auth token. GET requests sign the URL alone
(their parameters are already in it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping

SIGNATURE_HEADER = "X-Twilio-Signature"


def _pairs(params: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        return [(str(k), str(v)) for k, v in params.items()]
    return [(str(k), str(v)) for k, v in params]


def twilio_signature(
    auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]] | None = None
) -> str:
    """Base64 HMAC-SHA1 of ``url`` + sorted ``name+value`` pairs, keyed with ``auth_token``."""
    data = url + "".join(name + value for name, value in sorted(_pairs(params)))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
