"""Shared fixtures for the API test suite, and the session-wide "no key in the logs" guard."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field

import pytest
from django.core.cache import cache
from django.test import Client

import accounts.keys
import accounts.services
from accounts.models import ALL_SCOPES, APIKey, Organization

# --------------------------------------------------------------------------------------
# Session guard: every API key generated during the run must never reach a log record.
# --------------------------------------------------------------------------------------

# Tools the speech and browser tests need. `make test` installs them; without them those tests
# would skip, and a skipped test must not pass for a green run. Set ALLOW_MISSING_TEST_TOOLS=1
# to run a subset on a machine without them.
REQUIRED_TOOLS = ("espeak-ng", "sox", "chromium")


def pytest_sessionstart(session):
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing and os.environ.get("ALLOW_MISSING_TEST_TOOLS") != "1":
        raise pytest.UsageError(
            f"missing test tools: {', '.join(missing)}. `make test` installs them "
            "(scripts/system-deps.sh); or set ALLOW_MISSING_TEST_TOOLS=1 to let their tests skip."
        )


GENERATED_KEYS: list[str] = []
CAPTURED_LOGS: list[str] = []
WATCHED_LOGGERS = ("django", "django.request", "django.db.backends", "daphne")


class _CapturingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            CAPTURED_LOGS.append(self.format(record))  # includes the formatted traceback
        except Exception:  # a record that cannot be formatted: keep its raw parts
            CAPTURED_LOGS.append(f"{record.msg!r} {record.args!r}")


@dataclass(frozen=True)
class LogGuard:
    keys: list[str]  # every API key secret generated in this session
    logs: list[str]  # every formatted log record of this session

    def leaked(self, secrets: list[str]) -> list[str]:
        """The secrets that appear in some captured log text."""
        return leaked_keys(secrets, self.logs)


def leaked_keys(keys: list[str], texts: list[str]) -> list[str]:
    return [key for key in keys if any(key in text for text in texts)]


@pytest.fixture(scope="session", autouse=True)
def no_api_key_in_logs():
    original = accounts.keys.generate_key

    def recording_generate_key() -> str:
        key = original()
        GENERATED_KEYS.append(key)
        return key

    patcher = pytest.MonkeyPatch()
    # accounts.services imported the function by name: patch it where it is used too.
    patcher.setattr(accounts.keys, "generate_key", recording_generate_key)
    patcher.setattr(accounts.services, "generate_key", recording_generate_key)

    handler = _CapturingHandler()
    root = logging.getLogger()
    saved = [(root, root.level, root.propagate)]
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in WATCHED_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.setLevel(logging.DEBUG)
        logger.propagate = True
    try:
        yield LogGuard(keys=GENERATED_KEYS, logs=CAPTURED_LOGS)
    finally:
        root.removeHandler(handler)
        for logger, level, propagate in saved:
            logger.setLevel(level)
            logger.propagate = propagate
        patcher.undo()
    leaks = leaked_keys(GENERATED_KEYS, CAPTURED_LOGS)
    where = []
    for text in CAPTURED_LOGS:
        if any(key in text for key in leaks):
            first_line = text.splitlines()[0]
            for key in leaks:
                first_line = first_line.replace(key, key[:12] + "…")
            where.append(first_line[:300])
    assert not leaks, (
        f"{len(leaks)} API key secret(s) generated during the test session appeared in "
        f"captured log output (prefixes: {[k[:12] for k in leaks]}). Keys must never be "
        f"logged. Offending records: {where[:5]}"
    )


@pytest.fixture(scope="session", autouse=True)
def _jobs_run_inline():
    """Jobs run in-line after commit in the test process (no worker needed); the tests of the
    worker itself start a real one with JOBS_SYNC off."""
    from django.conf import settings

    saved = settings.JOBS_SYNC
    settings.JOBS_SYNC = True
    yield
    settings.JOBS_SYNC = saved


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters (create-call rate limit) live in the cache: start each test clean."""
    cache.clear()
    yield
    cache.clear()


# --------------------------------------------------------------------------------------
# Factories
# --------------------------------------------------------------------------------------


@pytest.fixture
def make_organization(db):
    counter = iter(range(1, 10_000))

    def make(name: str | None = None) -> Organization:
        return Organization.objects.create(name=name or f"Org {next(counter)}")

    return make


@pytest.fixture
def organization(make_organization) -> Organization:
    return make_organization("Org A")


@pytest.fixture
def other_organization(make_organization) -> Organization:
    return make_organization("Org B")


@pytest.fixture
def make_api_key(db, organization):
    """(APIKey, secret) for an organization (default: `organization`) and scopes (default: all)."""

    def make(org: Organization | None = None, scopes=ALL_SCOPES, name: str = "test key"):
        return accounts.services.api_key_create(
            organization=org or organization, name=name, scopes=scopes
        )

    return make


@pytest.fixture
def api_key(make_api_key) -> tuple[APIKey, str]:
    return make_api_key()


@dataclass
class Api:
    """A Django test client that sends an API key (X-API-Key, or Bearer) and JSON bodies."""

    secret: str | None = None
    bearer: bool = False
    client: Client = field(default_factory=Client)

    def headers(self, extra: dict | None) -> dict:
        headers = {}
        if self.secret is not None:
            if self.bearer:
                headers["Authorization"] = f"Bearer {self.secret}"
            else:
                headers["X-API-Key"] = self.secret
        headers.update(extra or {})
        return headers

    def request(self, method: str, path: str, body=None, *, headers=None, **kwargs):
        method = method.upper()
        if method == "GET":
            return self.client.get(
                path, data=kwargs.pop("params", None), headers=self.headers(headers), **kwargs
            )
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["content_type"] = "application/json"
        # No body: no Content-Type either, like `curl -X POST` in the seeds.
        return self.client.generic(method, path, headers=self.headers(headers), **kwargs)

    def get(self, path, params=None, **kwargs):
        if params is not None:
            kwargs["params"] = params
        return self.request("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.request("POST", path, body, **kwargs)

    def patch(self, path, body=None, **kwargs):
        return self.request("PATCH", path, body, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)

    def options(self, path, **kwargs):
        return self.request("OPTIONS", path, **kwargs)


@pytest.fixture
def make_api(make_api_key):
    """An Api client for an organization with the given scopes."""

    def make(org: Organization | None = None, scopes=ALL_SCOPES, *, bearer: bool = False) -> Api:
        _, secret = make_api_key(org, scopes)
        return Api(secret=secret, bearer=bearer)

    return make


@pytest.fixture
def api(make_api) -> Api:
    """All scopes, in `organization`."""
    return make_api()


@pytest.fixture
def other_api(make_api, other_organization) -> Api:
    """All scopes, in `other_organization`."""
    return make_api(other_organization)


@pytest.fixture
def anon() -> Api:
    """No key: a browser or an anonymous client."""
    return Api()


@pytest.fixture
def make_assistant(db, organization):
    from assistants.services import assistant_create

    def make(org: Organization | None = None, **data):
        data.setdefault("name", "Support")
        data.setdefault("system_prompt", "You are a helpful agent.")
        return assistant_create(organization=org or organization, data=data)

    return make


@pytest.fixture
def assistant(make_assistant):
    return make_assistant()


@pytest.fixture
def make_widget(db, organization):
    from widgets.services import widget_create

    def make(org: Organization | None = None, **data):
        return widget_create(organization=org or organization, data=data)

    return make


@pytest.fixture
def widget(make_widget, assistant):
    return make_widget(assistant=assistant, allowed_origins=["https://app.example.com"])


@pytest.fixture
def make_call(db, organization):
    from calls.models import Call

    def make(org: Organization | None = None, **fields):
        return Call.objects.create(organization=org or organization, **fields)

    return make


@pytest.fixture
def client_with_key():
    """Build an Api client for any secret (bad, revoked, ...): client_with_key(secret, bearer=)."""

    def make(secret: str | None, *, bearer: bool = False) -> Api:
        return Api(secret=secret, bearer=bearer)

    return make
