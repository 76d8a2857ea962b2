"""Test helpers for the Twilio HTTP side: a tiny stand-in for Twilio's REST API on 127.0.0.1
(the official SDK is pointed at it with TWILIO_API_BASE_URL), Twilio-style request signing with
the SDK's own RequestValidator, and factories for accounts and numbers."""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs
from xml.etree import ElementTree

from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "f00dfeed" * 4
OTHER_SID = "AC" + "fedcba9876543210" * 2
OTHER_TOKEN = "deadbeef" * 4


def sign(url: str, params: dict, token: str = AUTH_TOKEN) -> str:
    """X-Twilio-Signature as Twilio makes it (HMAC-SHA1 of the URL and the sorted params)."""
    return RequestValidator(token).compute_signature(url, params)


@dataclass
class Answer:
    status: int
    body: dict


@dataclass
class RestRequest:
    method: str
    path: str
    form: dict[str, list[str]]
    auth: tuple[str, str] | None

    def one(self, name: str) -> str:
        return self.form[name][0]

    def stream(self) -> dict:
        """The TwiML's `<Stream>`: its url and its `<Parameter>`s."""
        root = ElementTree.fromstring(self.one("Twiml"))
        stream = root.find("./Connect/Stream")
        return {
            "url": stream.get("url"),
            "parameters": {p.get("name"): p.get("value") for p in stream.findall("Parameter")},
        }


@dataclass
class FakeTwilioAPI:
    """`with FakeTwilioAPI() as api:` serves Twilio's Calls resource on `api.url`: creating a
    call answers a new CallSid (or the next scripted `Answer`), updating one answers it back.
    `api.requests` lists what the SDK sent."""

    requests: list[RestRequest] = field(default_factory=list)
    answers: deque = field(default_factory=deque)
    _sids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __enter__(self) -> FakeTwilioAPI:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                auth = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    auth = (user, password)
                request = RestRequest("POST", self.path, parse_qs(body), auth)
                api.requests.append(request)
                answer = api.answers.popleft() if api.answers else api.default(request)
                payload = json.dumps(answer.body).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def default(self, request: RestRequest) -> Answer:
        account = request.path.split("/")[3]
        if request.path.endswith("/Calls.json"):
            sid = f"CA{next(self._sids):032x}"
            return Answer(
                201,
                {
                    "sid": sid,
                    "account_sid": account,
                    "status": "queued",
                    "to": request.one("To"),
                    "from": request.one("From"),
                },
            )
        sid = request.path.rsplit("/", 1)[-1].removesuffix(".json")
        return Answer(200, {"sid": sid, "account_sid": account, "status": "completed"})

    def creates(self) -> list[RestRequest]:
        return [r for r in self.requests if r.path.endswith("/Calls.json")]

    def updates(self) -> list[RestRequest]:
        return [r for r in self.requests if not r.path.endswith("/Calls.json")]


def twilio_error(status: int, code: int, message: str) -> Answer:
    """An error as Twilio's REST API answers it."""
    return Answer(
        status,
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
    )


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)
