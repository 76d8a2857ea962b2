"""The official Twilio SDK, configured for this server: one place that builds clients, TwiML
and the URLs Twilio is given.

`TWILIO_API_BASE_URL` points the SDK at a stand-in (the Twilio emulator, a test server)
through the SDK's own extension point, its HTTP client: `BaseURLHttpClient` rewrites
`https://api.twilio.com` to that base URL. The SDK itself is never patched."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.conf import settings
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import Connect, Stream, VoiceResponse

TWILIO_API_ORIGIN = "https://api.twilio.com"
#: Where Twilio's media stream connects (the lead's Media Streams consumer serves it).
STREAM_PATH = "/ws/phone/twilio/stream"
#: The Twilio call events the status callback subscribes to.
STATUS_CALLBACK_EVENTS = ["initiated", "ringing", "answered", "completed"]

# The SDK logs each request's URL and headers at INFO; nothing secret is in them (the auth
# header is skipped), but they are noise in the worker's log.
_sdk_logger = logging.getLogger("telephony.twilio_sdk")
_sdk_logger.setLevel(logging.WARNING)


class BaseURLHttpClient(TwilioHttpClient):
    """The SDK's HTTP client, sending what it would send to api.twilio.com to `base_url`."""

    def __init__(self, base_url: str, **kwargs):
        kwargs.setdefault("logger", _sdk_logger)
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        if self.base_url and url.startswith(TWILIO_API_ORIGIN):
            url = self.base_url + url[len(TWILIO_API_ORIGIN) :]
        return super().request(method, url, *args, **kwargs)


def http_client() -> TwilioHttpClient:
    return BaseURLHttpClient(
        settings.TWILIO_API_BASE_URL,
        timeout=settings.TWILIO_HTTP_TIMEOUT_SECONDS,
        pool_connections=False,
    )


def client_for(*, account_sid: str, auth_token: str) -> Client:
    """A REST client for one account (the real API, or TWILIO_API_BASE_URL when set)."""
    return Client(account_sid, auth_token, http_client=http_client())


# ------------------------------------------------------------------------------ URLs


def public_url(path: str) -> str:
    """The absolute URL Twilio uses for `path` on this server (PUBLIC_BASE_URL + path)."""
    return settings.PUBLIC_BASE_URL + path


def stream_url() -> str:
    """The media stream's URL: wss:// when PUBLIC_BASE_URL is https://, else ws://."""
    parts = urlsplit(settings.PUBLIC_BASE_URL)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{STREAM_PATH}"


# ------------------------------------------------------------------------------ TwiML


def stream_twiml(*, call_id: str, token: str) -> str:
    """`<Connect><Stream>` to this server's stream URL. The call's id and single-use token
    travel as stream `<Parameter>`s (Twilio forwards them in the `start` message's
    `customParameters`), since a stream URL cannot carry a query string."""
    response = VoiceResponse()
    connect = Connect()
    stream = Stream(url=stream_url())
    stream.parameter(name="call_id", value=call_id)
    stream.parameter(name="token", value=token)
    connect.append(stream)
    response.append(connect)
    return str(response)


def reject_twiml() -> str:
    """A call nobody here answers: rejected (the caller hears busy; Twilio bills nothing)."""
    response = VoiceResponse()
    response.reject()
    return str(response)


def unavailable_twiml(message: str) -> str:
    response = VoiceResponse()
    response.say(message)
    response.hangup()
    return str(response)
