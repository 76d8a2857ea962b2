"""Shared bits of the OpenAI-compatible providers (OpenAI, Ollama, vLLM, llama.cpp, ...).

Endpoints are the operator's: a base URL, a key and whether the endpoint may live on a
private network, named in the server's settings (``VOICE_ENDPOINTS``, parsed by
:func:`parse_endpoints`); tenants pick one by name.  Every request goes through
:mod:`netguard` (resolved, checked and pinned at send time, no redirects).  Errors shown
to callers are generic; the details (status, reason) go to the server log only, never the
remote body.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netguard import URLRefused, check_url, guarded_async_client
from voice.providers.base import ProviderError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
ENDPOINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class OpenAiEndpoint:
    """Base URL, key and network rules of an OpenAI-compatible server.  ``repr`` hides the
    key.  ``service`` names it in the errors callers see ("The speech service ...")."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str = "",
        *,
        allow_private: bool = False,
        name: str = "",
        service: str = "speech service",
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.allow_private = allow_private
        self.name = name or "default"
        self.service = service
        try:
            # http only where the operator wrote http://; the address is checked per request.
            check_url(self.base_url, allow_http=True, allow_private=allow_private)
        except URLRefused as exc:
            log.warning("%s endpoint %r refused: %s", service, self.name, exc.reason)
            raise self.unavailable() from None

    def __repr__(self) -> str:
        return f"OpenAiEndpoint(name={self.name!r}, base_url={self.base_url!r})"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def client(self, timeout: float) -> Any:
        return guarded_async_client(
            allow_http=self.base_url.startswith("http://"),
            allow_private=self.allow_private,
            timeout=timeout,
            headers=self.headers(),
        )

    def unavailable(self) -> ProviderError:
        return ProviderError(f"The {self.service} is unavailable.")

    def http_error(self, status: int) -> ProviderError:
        """A failed status: logged with the status, shown to the caller as a generic error
        (the remote body is neither: it may be any page the endpoint chose to send)."""
        log.warning("%s endpoint %r answered HTTP %s", self.service, self.name, status)
        return ProviderError(f"The {self.service} returned an error.")

    def transport_error(self, exc: Exception) -> ProviderError:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            log.warning("%s endpoint %r timed out", self.service, self.name)
            return ProviderError(f"The {self.service} timed out.")
        reason = exc.reason if isinstance(exc, URLRefused) else type(exc).__name__
        log.warning("%s endpoint %r failed: %s", self.service, self.name, reason)
        return self.unavailable()


@dataclass(frozen=True)
class Endpoint:
    """One of the operator's named endpoints.  ``repr`` hides the key."""

    name: str
    base_url: str
    api_key: str = field(default="", repr=False)
    allow_private: bool = False

    def provider_options(self) -> dict[str, Any]:
        """What an OpenAI-compatible provider is built with."""
        return {
            "endpoint": self.name,
            "base_url": self.base_url,
            "api_key": self.api_key,
            "allow_private": self.allow_private,
        }


def parse_endpoints(raw: str, environ: Mapping[str, str]) -> dict[str, Endpoint]:
    """The operator's endpoints from ``VOICE_ENDPOINTS``: a JSON object, name ->
    ``{"base_url", "api_key" | "api_key_env", "allow_private"}``.  Raises ValueError with a
    message that says what to fix."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ValueError("must be a JSON object: name -> {base_url, api_key...}") from None
    if not isinstance(data, dict):
        raise ValueError("must be a JSON object: name -> {base_url, api_key...}")
    endpoints = {}
    for name, entry in data.items():
        where = f"endpoint {name!r}"
        if not ENDPOINT_NAME.match(name):
            raise ValueError(f"{where}: names are letters, digits, '_', '.', '-' (up to 64)")
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: must be an object with base_url")
        unknown = sorted(set(entry) - {"base_url", "api_key", "api_key_env", "allow_private"})
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r}")
        base_url, allow_private = entry.get("base_url"), entry.get("allow_private", False)
        if not isinstance(base_url, str) or not base_url:
            raise ValueError(f"{where}: base_url is required")
        if not isinstance(allow_private, bool):
            raise ValueError(f"{where}: allow_private must be true or false")
        try:
            parsed = check_url(base_url, allow_http=True, allow_private=allow_private)
        except URLRefused as exc:
            hint = "" if allow_private else ' (set "allow_private": true for a local server)'
            raise ValueError(f"{where}: base_url refused: {exc.reason}{hint}") from None
        if parsed.query or parsed.fragment:
            raise ValueError(f"{where}: base_url must not have a query or fragment")
        if "api_key" in entry and "api_key_env" in entry:
            raise ValueError(f"{where}: give api_key or api_key_env, not both")
        api_key = entry.get("api_key", "")
        if "api_key_env" in entry:
            variable = entry["api_key_env"]
            if not isinstance(variable, str) or not environ.get(variable):
                raise ValueError(f"{where}: api_key_env names {variable!r}, which is not set")
            api_key = environ[variable]
        if not isinstance(api_key, str):
            raise ValueError(f"{where}: api_key must be a string")
        endpoints[name] = Endpoint(name, base_url.rstrip("/"), api_key, allow_private)
    return endpoints
