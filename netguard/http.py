"""httpx clients whose every request is checked, resolved and pinned at send time.

The transport resolves the host itself, refuses the request when any address is not
allowed, and connects to the checked address: the URL handed to httpcore carries the IP,
while the ``Host`` header and, for https, the TLS SNI and certificate name (httpcore's
``sni_hostname`` extension) stay those of the original host.  A second DNS answer (DNS
rebinding) therefore never reaches a socket.  Redirects are never followed: a 3xx comes
back to the caller as it is.

Connections are pooled per address; two names served by the same address may share a
connection (as HTTP/2 coalescing does); both passed the same checks.
"""

from __future__ import annotations

import ssl
from typing import Any

import anyio
import httpx

from netguard.checks import URLRefused, check_url, resolve


class _Rules:
    def __init__(self, allow_http: bool, allow_private: bool) -> None:
        self.allow_http = allow_http
        self.allow_private = allow_private

    def check(self, request: httpx.Request) -> httpx.URL:
        return check_url(request.url, allow_http=self.allow_http, allow_private=self.allow_private)

    def resolve(self, url: httpx.URL) -> list[str]:
        port = url.port or (443 if url.scheme == "https" else 80)
        host = url.raw_host.decode("ascii")  # IDNA-encoded, as httpcore will use it
        return resolve(host, port, allow_private=self.allow_private)


def _pinned(request: httpx.Request, url: httpx.URL, address: str) -> httpx.Request:
    """``request`` sent to ``address``, still naming the original host."""
    extensions = dict(request.extensions)
    host = url.raw_host.decode("ascii")
    if url.scheme == "https" and host.strip("[]") != address:
        extensions["sni_hostname"] = host  # SNI and certificate check against the name
    # The headers already hold "Host: <original host>"; httpx keeps it.
    return httpx.Request(
        request.method,
        url.copy_with(host=address),
        headers=request.headers,
        stream=request.stream,
        extensions=extensions,
    )


class GuardedTransport(httpx.BaseTransport):
    """Synchronous transport: check, resolve, connect to a checked address."""

    def __init__(self, *, allow_http: bool = False, allow_private: bool = False, **kwargs: Any):
        self._rules = _Rules(allow_http, allow_private)
        self._inner = httpx.HTTPTransport(**kwargs)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = self._rules.check(request)
        addresses = self._rules.resolve(url)
        for address in addresses[:-1]:  # several addresses: try them in order
            try:
                return self._inner.handle_request(_pinned(request, url, address))
            except httpx.ConnectError:
                continue
        return self._inner.handle_request(_pinned(request, url, addresses[-1]))

    def close(self) -> None:
        self._inner.close()


class AsyncGuardedTransport(httpx.AsyncBaseTransport):
    """Asynchronous transport: the same, resolving in a worker thread under the connect
    time-out (``getaddrinfo`` blocks and has none of its own)."""

    def __init__(self, *, allow_http: bool = False, allow_private: bool = False, **kwargs: Any):
        self._rules = _Rules(allow_http, allow_private)
        self._inner = httpx.AsyncHTTPTransport(**kwargs)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = self._rules.check(request)
        limit = (request.extensions.get("timeout") or {}).get("connect")
        try:
            with anyio.fail_after(limit):
                addresses = await anyio.to_thread.run_sync(
                    self._rules.resolve, url, abandon_on_cancel=True
                )
        except TimeoutError:
            raise httpx.ConnectTimeout("name resolution timed out", request=request) from None
        for address in addresses[:-1]:
            try:
                return await self._inner.handle_async_request(_pinned(request, url, address))
            except httpx.ConnectError:
                continue
        return await self._inner.handle_async_request(_pinned(request, url, addresses[-1]))

    async def aclose(self) -> None:
        await self._inner.aclose()


class _NoRedirects:
    """Mixin: ``follow_redirects`` is always off, whatever a caller passes."""

    def build_request(self, *args: Any, **kwargs: Any) -> httpx.Request:
        try:
            return super().build_request(*args, **kwargs)  # type: ignore[misc]
        except httpx.InvalidURL:  # one exception for every refused URL
            raise URLRefused("an invalid URL") from None

    def send(self, request: httpx.Request, **kwargs: Any) -> Any:
        kwargs["follow_redirects"] = False
        return super().send(request, **kwargs)  # type: ignore[misc]


class GuardedClient(_NoRedirects, httpx.Client):
    pass


class AsyncGuardedClient(_NoRedirects, httpx.AsyncClient):
    pass


def guarded_client(
    *,
    allow_http: bool = False,
    allow_private: bool = False,
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx.Client:
    """An ``httpx.Client`` for URLs from users: see the module docstring.  Requests to a
    refused URL raise :class:`URLRefused` before any connection is made."""
    return GuardedClient(
        transport=GuardedTransport(
            allow_http=allow_http, allow_private=allow_private, verify=verify
        ),
        timeout=timeout,
        headers=headers,
        follow_redirects=False,
        trust_env=False,  # no proxies or .netrc from the environment
    )


def guarded_async_client(
    *,
    allow_http: bool = False,
    allow_private: bool = False,
    timeout: float = 10.0,
    headers: dict[str, str] | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncClient:
    """The asynchronous twin of :func:`guarded_client`."""
    return AsyncGuardedClient(
        transport=AsyncGuardedTransport(
            allow_http=allow_http, allow_private=allow_private, verify=verify
        ),
        timeout=timeout,
        headers=headers,
        follow_redirects=False,
        trust_env=False,
    )
