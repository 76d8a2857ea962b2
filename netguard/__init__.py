"""Outbound URL guard: every request the server makes to a URL it was given goes through it.

Framework-free (no Django, no project package), used by the speech providers, webhooks
and callbacks::

    from netguard import URLRefused, guarded_async_client

    async with guarded_async_client(timeout=10) as client:
        response = await client.post(url, json=body)  # URLRefused before any connection

* :func:`check_url`: static checks (scheme, user info, host, port, characters, IP literals).
* :func:`resolve`: the checked addresses of a host; refused when ANY answer is private,
  loopback, link-local, CGNAT, multicast, reserved, unspecified, benchmarking,
  documentation, a cloud metadata address, or an IPv6 form of one of those.
  ``allow_private`` admits loopback (localhost names too) and private ranges (an
  operator's own service), never metadata addresses.
* :func:`guarded_client` / :func:`guarded_async_client`: httpx clients that resolve,
  check and connect to the checked address (pinned: DNS rebinding does not help), keep
  the original ``Host`` and TLS name, and never follow redirects.
"""

from __future__ import annotations

from netguard.checks import URLRefused, address_refusal, check_url, resolve
from netguard.http import (
    AsyncGuardedTransport,
    GuardedTransport,
    guarded_async_client,
    guarded_client,
)

__all__ = [
    "AsyncGuardedTransport",
    "GuardedTransport",
    "URLRefused",
    "address_refusal",
    "check_url",
    "guarded_async_client",
    "guarded_client",
    "resolve",
]
