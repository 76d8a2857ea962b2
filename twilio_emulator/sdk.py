"""Point the official ``twilio`` SDK at the emulator through its own extension point: an HTTP
client that rewrites the https://api.twilio.com base URL (the SDK itself is not patched)."""

from __future__ import annotations

from typing import Any

from twilio.http.http_client import TwilioHttpClient

TWILIO_API = "https://api.twilio.com"


class EmulatorHttpClient(TwilioHttpClient):
    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any):
        if url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)
