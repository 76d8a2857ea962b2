"""Test doubles for the Twilio emulator's tests: a webhook receiver and a Media Streams server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.sync.server import serve

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "emulator-test-auth-token"


class Receiver:
    """Records every webhook; answers TwiML for paths in ``twiml`` and 204 otherwise."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.twiml: dict[str, str] = {}
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                record = {
                    "method": self.command,
                    "path": parts.path,
                    "url": receiver.url + self.path,
                    "headers": dict(self.headers),
                    "form": dict(parse_qsl(body, keep_blank_values=True)),
                    "query": dict(parse_qsl(parts.query, keep_blank_values=True)),
                }
                with receiver.changed:
                    receiver.requests.append(record)
                    receiver.changed.notify_all()
                twiml = receiver.twiml.get(parts.path)
                if twiml is None:
                    self.send_response(204)
                    self.end_headers()
                    return
                data = twiml.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def at(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class StreamServer:
    """A Media Streams consumer for tests. ``behaviour(server, conn, message)`` runs for each
    message received; ``reject`` refuses the handshake with 403. Records the handshake headers
    and every message with its arrival time."""

    def __init__(self, behaviour: Callable | None = None, reject: bool = False) -> None:
        self.behaviour = behaviour
        self.headers: list[dict[str, str]] = []
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.closed = threading.Event()
        self.state: dict[str, Any] = {}

        def process_request(connection, request):
            self.headers.append({k.lower(): v for k, v in request.headers.raw_items()})
            if reject:
                return connection.respond(403, "bad signature\n")
            return None

        def handler(connection) -> None:
            try:
                for raw in connection:
                    message = json.loads(raw)
                    self.messages.append((time.monotonic(), message))
                    if self.behaviour is not None:
                        self.behaviour(self, connection, message)
            finally:
                self.closed.set()

        self.server = serve(
            handler, "127.0.0.1", 0, process_request=process_request, compression=None
        )
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/ws/phone/twilio/stream"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, name: str) -> list[dict[str, Any]]:
        return [m for _, m in self.messages if m.get("event") == name]

    def first(self, name: str, timeout: float = 10.0) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, message in list(self.messages):
                if message.get("event") == name:
                    return at, message
            time.sleep(0.01)
        raise TimeoutError(f"no {name!r} message within {timeout}s")

    def close(self) -> None:
        self.server.shutdown()


def stream_twiml(url: str, **parameters: str) -> str:
    params = "".join(f'<Parameter name="{k}" value="{v}"/>' for k, v in parameters.items())
    return f'<Response><Connect><Stream url="{url}">{params}</Stream></Connect></Response>'
