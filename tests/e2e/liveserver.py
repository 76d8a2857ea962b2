"""A real daphne for browser tests and benchmarks, plus a headless Chromium launcher.

Used by tests/e2e/conftest.py and bench/widget_size.py. The server gets its own VAR_DIR
(SQLite file, recordings) and secret key; it is stopped by its pid.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
# widgets.views_pages.DEMO_ORGANIZATION (not imported: this module runs without Django set up)
DEMO_ORGANIZATION = "Demo"
VENV_BIN = Path(sys.executable).parent
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--component-updater=url-source=http://127.0.0.1:9/",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(name: str) -> str:
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    return str(ROOT / ".venv" / "bin" / name)


@dataclass
class LiveServer:
    port: int
    var_dir: Path
    env: dict
    api_key: str = ""
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    own_var_dir: bool = True
    _log: object = field(default=None, repr=False)
    workers: list = field(default_factory=list)

    @property
    def page_base(self) -> str:
        """Where host pages are served (the demo page embeds from `widget_base`)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def widget_base(self) -> str:
        return f"http://localhost:{self.port}"

    def log_text(self) -> str:
        if self.log_path and self.log_path.exists():
            return self.log_path.read_text(errors="replace")[-20000:]
        return ""

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [_bin("python"), "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def start(self) -> LiveServer:
        self.manage("migrate", "--noinput")
        # The demo organization: the demo host page (/demo/?widget=ID) serves only its widgets.
        self.api_key = (
            self.manage("create_api_key", "--organization", DEMO_ORGANIZATION, "--scopes", "all")
            .strip()
            .splitlines()[-1]
            .strip()
        )
        self.log_path = self.var_dir / "daphne.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            [
                # daphne as `make run` starts it: its access log redacts secret query parameters
                _bin("python"),
                "-m",
                "widgetsite.serve",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "widgetsite.asgi:application",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                r = httpx.get(f"{self.page_base}/v1/schema/", timeout=2)
                if r.status_code < 500:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"daphne did not answer within 60 s:\n{self.log_text()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start_worker(self, **extra_env: str) -> subprocess.Popen:
        """A real job worker (`manage.py worker`) on this server's database; stopped with the
        server, or earlier by `stop_worker` / a signal to its process group."""
        log = open(self.var_dir / f"worker-{len(self.workers)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [_bin("python"), "manage.py", "worker"],
            cwd=ROOT,
            env={**self.env, "JOBS_SYNC": "0", **extra_env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.workers.append(proc)
        return proc

    def worker_log_tail(self, chars: int = 3000) -> str:
        """The end of every worker's log, for a failure message."""
        tails = []
        for path in sorted(self.var_dir.glob("worker-*.log")):
            text = path.read_text(errors="replace")
            tails.append(f"--- {path.name} ---\n{text[-chars:]}")
        return "\n".join(tails)

    def stop_worker(self, proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        # The cluster's own children may outlive a killed parent: end the whole group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        for worker in self.workers:
            self.stop_worker(worker)
        proc = self.proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.own_var_dir and os.environ.get("E2E_KEEP_VAR") != "1":
            shutil.rmtree(self.var_dir, ignore_errors=True)

    # ---- the REST API ----
    def api(self, method: str, path: str, json: dict | None = None, expect: int | None = None):
        r = httpx.request(
            method,
            f"{self.page_base}/v1{path}",
            json=json,
            headers={"X-API-Key": self.api_key},
            timeout=30,
        )
        if expect is not None and r.status_code != expect:
            raise AssertionError(f"{method} {path} -> {r.status_code}: {r.text}")
        return r.json() if r.content else None

    def create_assistant(self, **fields) -> dict:
        body = {
            "name": "E2E assistant",
            "system_prompt": "You answer questions about Acme Bikes.",
            "starting_message": "Hello! Welcome to Acme Bikes. How can I help you?",
            "knowledge": [
                {
                    "question": "What are your opening hours?",
                    "answer": "We are open from nine to six, Monday to Saturday.",
                },
                # The voice tests ask this one: it survives the browser's noise suppression on
                # espeak speech better than "opening hours" (heard as "own printing hours").
                {
                    "question": "Where is the shop?",
                    "answer": "Our shop is at twelve Harbour Street.",
                },
            ],
            **fields,
        }
        return self.api("POST", "/assistants", body, expect=201)["data"]

    def create_widget(self, **fields) -> dict:
        """A widget via the API; inline (the card on the page) unless `placement` says else:
        the tests and benchmarks drive the card directly."""
        fields.setdefault("placement", "inline")
        widget = self.api("POST", "/widgets", expect=201)["data"]
        if fields:
            widget = self.api("PATCH", f"/widgets/{widget['id']}", fields, expect=200)["data"]
        return widget

    def demo_url(self, widget_id: str, *, on: str | None = None) -> str:
        """The demo host page for a widget; `on` picks the page's origin (default 127.0.0.1)."""
        return f"{on or self.page_base}/demo/?widget={widget_id}"


PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """The predicate's first truthy value, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@contextlib.contextmanager
def fresh_postgres_database(prefix: str = "vw_live"):
    """A new, empty PostgreSQL database for real processes (dropped afterwards); skips the
    calling test, saying why, when PostgreSQL does not answer on 127.0.0.1."""
    import pytest

    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"PostgreSQL ({PG_ADMIN_URL}) not reachable: {exc}")
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def start_server(var_dir: Path | None = None, extra_env: dict | None = None) -> LiveServer:
    own = var_dir is None
    var_dir = Path(var_dir or tempfile.mkdtemp(prefix="e2e-var-"))
    var_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "VAR_DIR": str(var_dir),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        # A Fernet key of its own (32 random bytes, url-safe base64), as for the secret key.
        "FIELD_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "DJANGO_ALLOWED_HOSTS": "localhost,127.0.0.1",
        "DJANGO_DEBUG": "0",
        "PYTHONUNBUFFERED": "1",
        # Test servers create many calls whose socket never opens (faked by the page, or
        # none at all); each would hold a place under the limit for its token's minute.
        "MAX_CONCURRENT_CALLS": "1000",
        # Warming every default model takes ~5 s a start; a test about the first call's
        # speed turns it on (`extra_env`), the others load what they use on their first call.
        "VOICE_WARM_START": "0",
    }
    # The caller's environment never chooses these (a suite run on PostgreSQL still gets an
    # SQLite test server); `extra_env` may.
    for name in ("DJANGO_SECRET_KEY_FILE", "DATABASE_URL", "REDIS_URL", "RECORDINGS_DIR"):
        env.pop(name, None)
    env.update(extra_env or {})
    # Models prepared by `make` live in the repository's var/models; reuse them.
    if "VOICE_MODEL_DIR" not in env and (ROOT / "var" / "models").is_dir():
        env["VOICE_MODEL_DIR"] = str(ROOT / "var" / "models")
    server = LiveServer(port=free_port(), var_dir=var_dir, env=env, own_var_dir=own)
    return server.start()


def launch_chromium(playwright, *, fake_mic_wav: Path | None = None, extra_args=()):
    args = list(CHROMIUM_ARGS)
    if fake_mic_wav is not None:
        args += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={Path(fake_mic_wav).resolve()}%noloop",
        ]
    args += list(extra_args)
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)


def have_speech_tools() -> bool:
    return bool(shutil.which("espeak-ng") and shutil.which("sox"))


def synth_speech(
    text: str,
    out: Path,
    *,
    pad_before: float = 0.0,
    pad_after: float = 0.0,
    speed: int = 160,
    repeat_after: float = 0.0,
) -> Path:
    """espeak-ng speech as 16 kHz mono PCM16 WAV, optionally padded with silence.

    `repeat_after` > 0 says it again after that many seconds, as a caller would after "sorry,
    I don't know": the browser's noise suppression sometimes garbles espeak speech enough for
    the first try to be misheard, and one misheard try must not fail a voice test."""
    out = Path(out)
    raw = out.with_suffix(".raw22k.wav")
    mono = out.with_suffix(".16k.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(speed), "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(mono)], check=True)
    if repeat_after:
        twice = out.with_suffix(".twice.wav")
        subprocess.run(
            ["sox", str(mono), str(twice), "pad", "0", str(repeat_after), "repeat", "1"],
            check=True,
        )
        twice.replace(mono)
    if pad_before or pad_after:
        subprocess.run(
            ["sox", str(mono), str(out), "pad", str(pad_before), str(pad_after)], check=True
        )
    else:
        mono.replace(out)
    return out
