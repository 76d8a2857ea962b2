"""The emulator: Twilio's REST Calls resource on 127.0.0.1, plus the calls it places.

The REST side runs on a threaded HTTP server; calls, status callbacks and media streams run on
one asyncio loop in a background thread. Outgoing requests (status callbacks, TwiML fetches,
voice webhooks, stream WebSockets) are signed for the URL as the product gave it and can be
routed elsewhere with ``rewrite`` (e.g. the public https origin -> the local test server).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import threading
from collections.abc import Callable, Coroutine
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx

from twilio_emulator.calls import (
    API_VERSION,
    CALLBACK_EVENTS,
    Callback,
    EmulatedCall,
    Scenario,
    signed_request_parts,
)

E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_CALLS = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Calls\.json$")
_CALL = re.compile(rf"^/{API_VERSION}/Accounts/(?P<account>[^/]+)/Calls/(?P<sid>[^/]+)\.json$")


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


class TwilioEmulator:
    """A local stand-in for the parts of Twilio a Media Streams product uses.

    ``accounts`` maps account SID -> auth token (one is generated when omitted). ``rewrite``
    maps URL prefixes the product hands out to where they are really served, e.g.
    ``{"https://voice.example.test": "http://127.0.0.1:8000"}`` (the ``wss://`` form of an
    ``https://`` key is routed to the ``ws://`` form of its target). ``stream_signature``:
    which URL the WebSocket handshake's X-Twilio-Signature signs: ``"stream-url"`` (default: the
    ``<Stream url>`` exactly as written, wss:// included, no parameters) or ``"https"`` (the
    same URL with its wss:// scheme written https://).
    """

    def __init__(
        self,
        accounts: dict[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rewrite: dict[str, str] | None = None,
        default_scenario: Scenario | None = None,
        stream_signature: str = "stream-url",
    ) -> None:
        if not accounts:
            accounts = {"AC" + secrets.token_hex(16): secrets.token_hex(16)}
        if stream_signature not in ("stream-url", "https"):
            raise ValueError("stream_signature must be 'stream-url' or 'https'")
        self.accounts = dict(accounts)
        self.host, self.port = host, port
        self.rewrite = dict(rewrite or {})
        self.default_scenario = default_scenario or Scenario()
        self.stream_signature = stream_signature
        self.scenarios: dict[str, Scenario] = {}
        self.calls: dict[str, EmulatedCall] = {}
        self.requests: list[dict[str, Any]] = []  # every REST request: method, path, form
        self._lock = threading.Lock()
        self._new_call = threading.Condition(self._lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: httpx.AsyncClient | None = None
        self._server: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._tasks: set[asyncio.Future] = set()

    # ------------------------------------------------------------------ lifecycle

    @property
    def account_sid(self) -> str:
        return next(iter(self.accounts))

    @property
    def auth_token(self) -> str:
        return self.accounts[self.account_sid]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> TwilioEmulator:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run_loop() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.call_soon(ready.set)
            self._loop.run_forever()

        loop_thread = threading.Thread(target=run_loop, name="twilio-emulator-loop", daemon=True)
        loop_thread.start()
        ready.wait()
        self._http = self._run_sync(_make_http_client(), 5)
        self._server = ThreadingHTTPServer((self.host, self.port), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        http_thread = threading.Thread(
            target=self._server.serve_forever,
            args=(0.05,),
            name="twilio-emulator-http",
            daemon=True,
        )
        http_thread.start()
        self._threads = [loop_thread, http_thread]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Hang up live calls (their streams get `stop`, callbacks are sent), then shut down."""
        if self._loop is None:
            return
        for call in list(self.calls.values()):
            if not call.ended.is_set():
                self._call_soon(call._request_end, "emulator-stopped")
        for call in list(self.calls.values()):
            call.ended.wait(timeout)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._run_sync(self._http.aclose(), 5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        for thread in self._threads:
            thread.join(timeout)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> TwilioEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def http_client(self, **kwargs: Any):
        """A ``twilio`` SDK HTTP client that sends api.twilio.com requests to this emulator:
        ``twilio.rest.Client(sid, token, http_client=emulator.http_client())``."""
        from twilio_emulator.sdk import EmulatorHttpClient

        return EmulatorHttpClient(self.base_url, **kwargs)

    # ------------------------------------------------------------------ configuration

    def set_scenario(self, to: str, scenario: Scenario) -> None:
        """Calls placed to ``to`` follow ``scenario`` (others follow ``default_scenario``)."""
        self.scenarios[to] = scenario

    def route(self, url: str) -> str:
        """Where a URL the product handed out is really reached (``rewrite``)."""
        for prefix, target in self.rewrite.items():
            for source, dest in ((prefix, target), (_ws_form(prefix), _ws_form(target))):
                if source and url.startswith(source):
                    return dest + url[len(source) :]
        return url

    def stream_signature_url(self, url: str) -> str:
        if self.stream_signature == "https":
            parts = urlsplit(url)
            scheme = {"wss": "https", "ws": "http"}.get(parts.scheme, parts.scheme)
            return urlunsplit((scheme, *parts[1:]))
        return url

    # ------------------------------------------------------------------ calls

    def get_call(self, sid: str) -> EmulatedCall:
        return self.calls[sid]

    def wait_for_call(self, timeout: float = 10.0, index: int = -1) -> EmulatedCall:
        """The latest call (or ``calls[index]``), waiting for one to be created."""
        with self._new_call:
            if not self._new_call.wait_for(lambda: self.calls, timeout):
                raise TimeoutError(f"no call created within {timeout}s")
            return list(self.calls.values())[index]

    def incoming_call(
        self,
        voice_url: str,
        *,
        from_: str,
        to: str,
        account_sid: str | None = None,
        method: str = "POST",
        scenario: Scenario | None = None,
        status_callback: str | None = None,
        status_callback_events: list[str] | None = None,
    ) -> EmulatedCall:
        """A caller dials ``to``: Twilio requests the number's voice webhook (signed, with
        CallStatus=ringing), then executes the TwiML it returns (e.g. <Connect><Stream>)."""
        account = account_sid or self.account_sid
        call = EmulatedCall(
            self,
            account_sid=account,
            to=to,
            from_=from_,
            direction="inbound",
            scenario=scenario or Scenario(ring_seconds=0.0),
            url=voice_url,
            method=method,
            status_callback=status_callback,
            status_callback_events=status_callback_events,
        )
        self._register(call)
        return call

    def _register(self, call: EmulatedCall) -> None:
        with self._new_call:
            self.calls[call.sid] = call
            self._new_call.notify_all()
        future = asyncio.run_coroutine_threadsafe(call.run(), self._loop)
        self._tasks.add(future)
        future.add_done_callback(self._tasks.discard)

    async def signed_request(
        self,
        account_sid: str,
        url: str,
        method: str,
        params: dict[str, str],
        record: Callback | None = None,
    ) -> httpx.Response | str:
        """Send a webhook as Twilio does; returns the response, or an error string."""
        full, headers, form = signed_request_parts(self.accounts[account_sid], url, method, params)
        headers["User-Agent"] = "TwilioProxy/1.1"
        if record is not None:
            record.headers = dict(headers)
        try:
            return await self._http.request(
                method.upper(), self.route(full), data=form, headers=headers
            )
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}"

    # ------------------------------------------------------------------ REST handlers

    def handle(self, method: str, path: str, auth: str | None, form: dict[str, list[str]]):
        """(HTTP status, JSON body) for one REST request; called on the HTTP threads."""
        self.requests.append({"method": method, "path": path, "form": form})
        try:
            match_calls, match_call = _CALLS.match(path), _CALL.match(path)
            if not (match_calls or match_call):
                raise ApiError(404, 20404, f"The requested resource {path} was not found")
            account = (match_calls or match_call)["account"]
            self._authenticate(account, auth)
            if match_calls and method == "POST":
                return 201, self._create(account, form)
            if match_call:
                call = self.calls.get(match_call["sid"])
                if call is None or call.account_sid != account:
                    raise ApiError(404, 20404, f"The requested resource {path} was not found")
                if method == "GET":
                    return 200, call.to_json()
                if method == "POST":
                    return 200, self._update(call, form)
            raise ApiError(405, 20004, "Method not allowed")
        except ApiError as exc:
            return exc.status, exc.body()

    def _authenticate(self, account: str, auth: str | None) -> None:
        try:
            scheme, _, encoded = (auth or "").partition(" ")
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            scheme = user = password = ""
        token = self.accounts.get(user)
        if (
            scheme.lower() != "basic"
            or token is None
            or not secrets.compare_digest(token, password)
        ):
            raise ApiError(401, 20003, "Authenticate")
        if user != account:
            raise ApiError(403, 20003, "Authenticate")

    def _create(self, account: str, form: dict[str, list[str]]) -> dict[str, Any]:
        one = _first(form)
        to, from_ = one("To"), one("From")
        if not to:
            raise ApiError(400, 21201, "No 'To' number is specified")
        if not from_:
            raise ApiError(400, 21213, "No 'From' number is specified")
        if not E164.match(to):
            raise ApiError(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if not E164.match(from_):
            raise ApiError(400, 21212, f"Invalid 'From' Phone Number: {from_}")
        twiml, url = one("Twiml"), one("Url")
        if not twiml and not url:
            raise ApiError(400, 21205, "Url parameter is required.")
        if url and not _is_http_url(url):
            raise ApiError(400, 21205, f"Url is not a valid URL: {url}")
        callback = one("StatusCallback")
        if callback and not _is_http_url(callback):
            raise ApiError(400, 21609, f"Invalid StatusCallback url: {callback}")
        events = [e for value in form.get("StatusCallbackEvent", []) for e in value.split()]
        unknown = sorted(set(events) - set(CALLBACK_EVENTS))
        if unknown:
            raise ApiError(400, 21626, f"Invalid StatusCallbackEvent: {', '.join(unknown)}")
        callback_method = (one("StatusCallbackMethod") or "POST").upper()
        method = (one("Method") or "POST").upper()
        if callback_method not in ("GET", "POST") or method not in ("GET", "POST"):
            raise ApiError(400, 21207, "Invalid Method: use GET or POST")
        call = EmulatedCall(
            self,
            account_sid=account,
            to=to,
            from_=from_,
            direction="outbound-api",
            scenario=self.scenarios.get(to, self.default_scenario),
            twiml=twiml or None,
            url=None if twiml else url,
            method=method,
            status_callback=callback or None,
            status_callback_method=callback_method,
            status_callback_events=events,
        )
        body = call.to_json()  # status "queued", as Twilio answers
        self._register(call)
        return body

    def _update(self, call: EmulatedCall, form: dict[str, list[str]]) -> dict[str, Any]:
        one = _first(form)
        status, twiml, url = one("Status"), one("Twiml"), one("Url")
        if status and status not in ("completed", "canceled"):
            raise ApiError(400, 21218, f"Invalid Status: {status}")
        if not (status or twiml or url):
            raise ApiError(400, 21205, "Url, Twiml or Status parameter is required.")
        if call.ended.is_set() or call._over.is_set():
            raise ApiError(400, 21220, "Call is not in-progress. Cannot redirect.")
        method = (one("Method") or "POST").upper()
        self._run_sync(call.update(status, twiml, url, method), 15)
        return call.to_json()

    # ------------------------------------------------------------------ loop plumbing

    def _run_sync(self, coro: Coroutine, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _call_soon(self, fn: Callable, *args: Any) -> None:
        self._loop.call_soon_threadsafe(fn, *args)


async def _make_http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=10.0, follow_redirects=False, trust_env=False)


def _first(form: dict[str, list[str]]) -> Callable[[str], str]:
    return lambda name: (form.get(name) or [""])[0]


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _ws_form(url: str) -> str:
    if url.startswith("https://"):
        return "wss://" + url[len("https://") :]
    if url.startswith("http://"):
        return "ws://" + url[len("http://") :]
    return ""


def _handler_for(emulator: TwilioEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "TwilioEmulator/1.0"

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            form = parse_qs(body, keep_blank_values=True) if method == "POST" else {}
            status, payload = emulator.handle(
                method, parts.path, self.headers.get("Authorization"), form
            )
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    return Handler
