"""Runs daphne (same command line as the `daphne` script) with secrets kept out of its access log.

    python -m widgetsite.serve -b 127.0.0.1 -p 8000 widgetsite.asgi:application

Daphne writes one access line per request (stdout at the default verbosity) with the full
query string, so a key sent by mistake as `?api_key=...`, or the call socket's gateway `token`,
would land in the log in clear. Here the values of secret-looking query parameters are replaced
by `[redacted]` before daphne's own access-log writer sees them.

Before daphne binds its port, the default speech models are loaded and warmed
(`calls.warmup`, setting VOICE_WARM_START): the first call is as fast as the tenth.
"""

from __future__ import annotations

import re
import sys
from urllib.parse import unquote_plus

from daphne.cli import CommandLineInterface
from daphne.server import Server

REDACTED = "[redacted]"
# A parameter name containing one of these (api_key, key, token, session_token, access_token,
# password, secret, client_secret, signature, auth, credential...) has its value redacted.
SECRET_NAME = re.compile(r"key|token|secret|passw|pwd|signature|credential|auth", re.IGNORECASE)
# One `name=value` pair of a query string (the value runs to the next & or ; or the end).
_PAIR = re.compile(r"(?P<name>[^&;=]*)=(?P<value>[^&;]*)")


def _redact_pair(match: re.Match) -> str:
    name = match.group("name")
    # The name may be percent-encoded (`api%5Fkey`); decoded only to decide.
    if SECRET_NAME.search(unquote_plus(name)):
        return f"{name}={REDACTED}"
    return match.group(0)


def redact_path(path: str) -> str:
    """`path?query` with the values of secret-looking parameters replaced by [redacted]."""
    base, sep, query = path.partition("?")
    if not sep:
        return path
    return base + sep + _PAIR.sub(_redact_pair, query)


def redacting(action_logger):
    """Wraps daphne's action logger (its access-log writer) so it never sees a secret."""

    def log(protocol, action, details):
        if isinstance(details.get("path"), str):
            details = {**details, "path": redact_path(details["path"])}
        return action_logger(protocol, action, details)

    return log


class RedactingServer(Server):
    def __init__(self, *args, action_logger=None, **kwargs):
        if action_logger is not None:
            action_logger = redacting(action_logger)
        super().__init__(*args, action_logger=action_logger, **kwargs)

    def run(self):
        # The application is imported (Django is set up) and no port is bound yet: load and
        # warm the speech models now, so the first call does not wait for them.
        from calls.warmup import warm_start

        warm_start()
        super().run()


class RedactingCommandLineInterface(CommandLineInterface):
    server_class = RedactingServer


def main(argv: list[str] | None = None) -> None:
    RedactingCommandLineInterface().run(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
