"""What a phone number and a Twilio account look like (used by the API, the admin and the
services, so each says the same)."""

from __future__ import annotations

import re

#: E.164: a plus, a country code that does not start with 0, at most 15 digits in all.
E164_RE = re.compile(r"^\+[1-9][0-9]{1,14}$")
#: A Twilio Account SID: "AC" and 32 lower-case hex characters.
ACCOUNT_SID_RE = re.compile(r"^AC[0-9a-f]{32}$")
#: An auth token as stored: printable, no whitespace (Twilio's are 32 hex characters).
AUTH_TOKEN_RE = re.compile(r"^[\x21-\x7e]{8,128}$")

E164_MESSAGE = "Must be a phone number in E.164 format: + and up to 15 digits, e.g. +14155552671."
ACCOUNT_SID_MESSAGE = "Must be a Twilio Account SID: AC followed by 32 lower-case hex characters."
AUTH_TOKEN_MESSAGE = "Must be the account's auth token: 8-128 printable characters, no spaces."


def is_e164(value: object) -> bool:
    return isinstance(value, str) and bool(E164_RE.match(value))


def is_account_sid(value: object) -> bool:
    return isinstance(value, str) and bool(ACCOUNT_SID_RE.match(value))


def is_auth_token(value: object) -> bool:
    return isinstance(value, str) and bool(AUTH_TOKEN_RE.match(value))
