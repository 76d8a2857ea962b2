"""A webhook receiver for tests: a tiny HTTP server on 127.0.0.1 in a thread that verifies
every request with the third-party `standardwebhooks` package and answers from a script."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Answer:
    status: int = 200
    body: bytes = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    verified_by: list[int]  # indexes of the receiver's secrets whose Webhook.verify passed
    at: float = 0.0  # time.time() when it arrived
    status: int = 0  # what the receiver answered

    @property
    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """`with Receiver(secrets=[...]) as r:` serves on `r.url`; `r.answers` is a script of
    `Answer`s (then 200), or `decide(received) -> Answer` answers each request; `r.received`
    lists what came in; `r.connections` counts accepted TCP connections (a guard test checks
    it stays 0)."""

    def __init__(
        self,
        secrets: list[str] | None = None,
        *,
        host: str = "127.0.0.1",
        decide: Callable[[Received], Answer] | None = None,
    ):
        self.secrets = list(secrets or [])
        self.decide = decide
        self.answers: deque[Answer] = deque()
        self.received: list[Received] = []
        self.connections = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                received = receiver._record(self.path, headers, body)
                with receiver._lock:
                    answer = receiver.answers.popleft() if receiver.answers else None
                if answer is None:
                    answer = receiver.decide(received) if receiver.decide else Answer()
                received.status = answer.status
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format, *args) -> None:  # keep test output quiet
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request, client_address) -> bool:
                with receiver._lock:
                    receiver.connections += 1
                return True

        self._server = Server((host, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> Received:
        verified = []
        for index, secret in enumerate(self.secrets):
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
            verified.append(index)
        received = Received(path, headers, body, verified, at=time.time())
        with self._lock:
            self.received.append(received)
        return received

    def answer(self, *answers: Answer) -> Receiver:
        self.answers.extend(answers)
        return self

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def free_port() -> int:
    """A loopback port with nothing listening (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SilentServer:
    """Accepts TCP connections (the kernel's backlog) but never answers: a time-out."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}/hooks"

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc) -> None:
        self._sock.close()
