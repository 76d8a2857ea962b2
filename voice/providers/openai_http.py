"""Shared bits of the OpenAI-compatible providers (OpenAI, Ollama, vLLM, llama.cpp, ...)."""

from __future__ import annotations

from typing import Any

from voice.providers.base import ProviderError

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAiEndpoint:
    """Base URL, key and time-out of an OpenAI-compatible server.  ``repr`` hides the key."""

    def __init__(
        self, base_url: str = DEFAULT_BASE_URL, api_key: str = "", timeout: float = 20.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = float(timeout)

    def __repr__(self) -> str:
        return f"OpenAiEndpoint(base_url={self.base_url!r})"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def client(self) -> Any:
        import httpx

        return httpx.AsyncClient(timeout=httpx.Timeout(self.timeout), headers=self.headers())


def http_error(what: str, status: int, body: bytes | str) -> ProviderError:
    """A short, credential-free error for a failed HTTP call."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = " ".join(text.split())[:200]
    return ProviderError(f"{what} returned HTTP {status}: {text}")


def transport_error(what: str, exc: Exception) -> ProviderError:
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(f"{what} timed out")
    return ProviderError(f"{what} failed: {type(exc).__name__}")
