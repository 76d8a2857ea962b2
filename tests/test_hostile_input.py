"""Hostile input to the HTTP API: every such request is a 4xx in the error envelope, nothing is
stored, later reads still work, and no traceback reaches the log.

Django's test client covers the rules; a real daphne (tests/e2e/liveserver.py, started as
`make run` starts it) covers what only a server shows: the 413 for a 5 MB body with and
without Content-Length, and the access log, which must not show secret query parameters.
The text-storage cases (NUL, unpaired surrogates) are in tests/assistants/
test_hostile_input_storage.py so that they also run on PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.test import override_settings

from accounts.fields import (
    FREE_FORM_MAX_BYTES,
    FREE_FORM_MAX_DEPTH,
    FREE_FORM_MAX_KEY_LENGTH,
    FREE_FORM_MAX_KEYS,
)
from accounts.parsers import MAX_JSON_DEPTH, json_depth
from assistants.models import Assistant
from calls.models import Call
from widgets.models import Widget

sys.path.insert(0, str(Path(__file__).resolve().parent / "e2e"))

from liveserver import LiveServer, start_server  # noqa: E402

ORIGIN = "https://app.example.com"
BASE = {"name": "Support", "system_prompt": "You are a helpful agent."}
FIVE_MB = 5 * 1024 * 1024


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def assert_envelope(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["status"] is False and isinstance(body["message"], str)
    return body


@pytest.fixture
def no_tracebacks(caplog):
    """Fails the test if anything logged an error or a traceback (client input never should)."""
    caplog.set_level(logging.DEBUG)
    yield
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [f"{r.name}: {r.getMessage()}" for r in bad]


def raw(client_api, method: str, path: str, body: bytes | str, **headers):
    """A request with this exact body (the Api helper would JSON-encode it)."""
    return client_api.client.generic(
        method,
        path,
        body,
        content_type="application/json",
        headers=client_api.headers(headers),
    )


# ------------------------------------------------------------------------------- body size


@pytest.mark.django_db
@pytest.mark.usefixtures("no_tracebacks")
class TestBodySize:
    @override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
    def test_a_body_one_byte_over_the_limit_is_413_and_one_at_the_limit_is_parsed(self, api):
        filler = 1000 - len(json.dumps({**BASE, "description": ""}))
        at_limit = json.dumps({**BASE, "description": "x" * filler})
        assert len(at_limit) == 1000
        assert raw(api, "POST", "/v1/assistants", at_limit).status_code == 201

        body = assert_envelope(raw(api, "POST", "/v1/assistants", at_limit + " "), 413)
        assert "1000 bytes" in body["message"]
        assert Assistant.objects.count() == 1

    @pytest.mark.parametrize(
        "method, path, keyed",
        [
            ("POST", "/v1/widgets/create-call", False),
            ("POST", "/v1/assistants", False),
            ("POST", "/v1/assistants", True),
            ("PATCH", "/v1/widgets/{widget}", False),
            ("PATCH", "/v1/widgets/{widget}", True),
        ],
    )
    def test_a_5_mb_body_is_413_before_authentication_and_stores_nothing(
        self, anon, api, widget, method, path, keyed
    ):
        client = api if keyed else anon
        body = b'{"widget_id": "' + b"a" * FIVE_MB + b'"}'
        response = raw(client, method, path.format(widget=widget.id), body, Origin=ORIGIN)

        assert_envelope(response, 413)
        assert Call.objects.count() == 0 and Assistant.objects.count() == 1  # the fixture's
        assert api.get(f"/v1/widgets/{widget.id}").status_code == 200


# ------------------------------------------------------------------------------ JSON shape


@pytest.mark.django_db
@pytest.mark.usefixtures("no_tracebacks")
class TestJsonShape:
    def test_depth_is_counted_without_recursion_and_ignores_brackets_in_strings(self):
        assert json_depth(nested(100_000)) == 100_000
        assert json_depth('{"a": "[[[[{{{{", "b": [1, {"c": "]]]\\"[["}]}') == 3
        assert json_depth("[]" * 100_000) == 1
        assert json_depth("42") == 0

    @pytest.mark.parametrize(
        "method, path, keyed",
        [
            ("POST", "/v1/widgets/create-call", False),
            ("POST", "/v1/assistants", True),
            ("PATCH", "/v1/widgets/{widget}", True),
            ("POST", "/v1/calls/initiate", True),
        ],
    )
    def test_100000_levels_of_nesting_is_a_400_not_a_recursion_error(
        self, anon, api, widget, method, path, keyed
    ):
        client = api if keyed else anon
        response = raw(
            client, method, path.format(widget=widget.id), nested(100_000), Origin=ORIGIN
        )

        body = assert_envelope(response, 400)
        assert f"deeper than {MAX_JSON_DEPTH}" in body["message"]
        assert Call.objects.count() == 0

    def test_nesting_at_the_limit_passes_the_parser_and_one_more_level_does_not(self, api, db):
        def body(depth: int) -> str:  # the object is level 1, the list holds the rest
            return json.dumps(BASE)[:-1] + ', "extra": ' + nested(depth - 1) + "}"

        at_limit = raw(api, "POST", "/v1/assistants", body(MAX_JSON_DEPTH))
        assert "extra" in assert_envelope(at_limit, 400)["errors"]  # the serializer's turn
        too_deep = assert_envelope(
            raw(api, "POST", "/v1/assistants", body(MAX_JSON_DEPTH + 1)), 400
        )
        assert "deeper" in too_deep["message"]

    @pytest.mark.parametrize(
        "payload",
        [b"{", b'{"name": }', b"\xff\xfe{}", b'{"name": NaN}', b'{"n": Infinity}', b"   "],
        ids=["truncated", "no-value", "not-utf8", "nan", "infinity", "blank"],
    )
    def test_malformed_json_is_a_400_saying_so(self, api, db, payload):
        body = assert_envelope(raw(api, "POST", "/v1/assistants", payload), 400)
        assert body["message"].startswith("Malformed JSON")
        assert Assistant.objects.count() == 0

    def test_an_integer_of_5000_digits_is_a_400(self, api, db):
        payload = '{"name": "n", "system_prompt": "p", "max_call_seconds": ' + "9" * 5000 + "}"
        assert_envelope(raw(api, "POST", "/v1/assistants", payload), 400)

    @pytest.mark.parametrize("payload", ["[]", "false", "0", '""', "null"])
    def test_widget_create_refuses_a_body_that_is_not_an_object(self, api, db, payload):
        body = assert_envelope(raw(api, "POST", "/v1/widgets", payload), 400)
        assert "object" in body["message"].lower() or "dictionary" in body["message"].lower()
        assert Widget.objects.count() == 0

    def test_widget_create_with_an_empty_body_still_uses_the_defaults(self, api, db):
        response = api.post("/v1/widgets")
        assert response.status_code == 201
        assert response.json()["data"]["call_to_action"] == "Talk to our assistant"

    @pytest.mark.parametrize("payload", ["[]", "false", "0", '""', "null", '["name"]'])
    @pytest.mark.parametrize(
        "method, path",
        [
            ("PATCH", "/v1/widgets/{widget}"),
            ("POST", "/v1/assistants"),
            ("PATCH", "/v1/assistants/{assistant}"),
            ("POST", "/v1/calls/initiate"),
            ("POST", "/v1/widgets/create-call"),
        ],
    )
    def test_every_object_write_refuses_other_json_values(self, api, widget, method, path, payload):
        before = (Widget.objects.get().updated_at, Assistant.objects.get().updated_at)
        url = path.format(widget=widget.id, assistant=widget.assistant_id)

        assert_envelope(raw(api, method, url, payload), 400)

        assert (Widget.objects.get().updated_at, Assistant.objects.get().updated_at) == before
        assert Assistant.objects.count() == 1 and Call.objects.count() == 0


# ------------------------------------------------------------------- free-form settings


def settings_of(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"k": value}
    return value


@pytest.mark.django_db
@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize("field", ["voice_settings", "dtmf_rules"])
class TestFreeFormSettings:
    def test_settings_at_every_limit_are_stored(self, api, field):
        at_limits = {f"k{i}": i for i in range(FREE_FORM_MAX_KEYS - 2)}
        at_limits["x" * FREE_FORM_MAX_KEY_LENGTH] = settings_of(FREE_FORM_MAX_DEPTH - 1)
        at_limits["pad"] = ""
        size = len(json.dumps(at_limits, separators=(",", ":")))
        at_limits["pad"] = "p" * (FREE_FORM_MAX_BYTES - size)

        response = api.post("/v1/assistants", {**BASE, field: at_limits})

        assert response.status_code == 201, response.content
        assert response.json()["data"][field] == at_limits

    @pytest.mark.parametrize(
        "value, words",
        [
            ({f"k{i}": i for i in range(FREE_FORM_MAX_KEYS + 1)}, "keys per object"),
            ({"a": {f"k{i}": i for i in range(FREE_FORM_MAX_KEYS + 1)}}, "keys per object"),
            ({"x" * (FREE_FORM_MAX_KEY_LENGTH + 1): 1}, "characters"),
            ({"": 1}, "characters"),
            (settings_of(FREE_FORM_MAX_DEPTH + 1), "deeper"),
            ({"a": [[[[1]]]]}, "deeper"),
            ({"big": "x" * FREE_FORM_MAX_BYTES}, "bytes"),
            ("loud", "object"),
            ([1, 2], "object"),
        ],
        ids=[
            "keys",
            "nested-keys",
            "key-length",
            "empty-key",
            "depth",
            "list-depth",
            "size",
            "string",
            "list",
        ],
    )
    def test_settings_over_a_limit_are_a_400_naming_the_field(self, api, field, value, words):
        body = assert_envelope(api.post("/v1/assistants", {**BASE, field: value}), 400)

        assert field in body["errors"] and field in body["message"]
        assert words in body["message"]
        assert Assistant.objects.count() == 0

    def test_patch_over_the_size_limit_keeps_the_stored_settings(self, api, assistant, field):
        assert api.patch(f"/v1/assistants/{assistant.id}", {field: {"a": 1}}).status_code == 200
        response = api.patch(f"/v1/assistants/{assistant.id}", {field: {"b": "x" * 2_400_000}})

        assert response.status_code in (400, 413)
        assistant.refresh_from_db()
        assert getattr(assistant, field) == {"a": 1}


# ---------------------------------------------------------------------- query parameters


@pytest.mark.django_db
@pytest.mark.usefixtures("no_tracebacks")
class TestDateFilters:
    @pytest.mark.parametrize(
        "params, name",
        [
            ({"created_after": "0001-01-01T00:00:00+23:59"}, "created_after"),
            ({"created_before": "0001-01-01T00:00:00+23:59"}, "created_before"),
            ({"created_after": "9999-12-31T23:59:59-23:59"}, "created_after"),
            ({"created_before": "9999-12-31T23:59:59.999999-01:00"}, "created_before"),
        ],
    )
    def test_a_date_that_leaves_the_range_in_utc_is_a_400_naming_the_filter(
        self, api, params, name
    ):
        body = assert_envelope(api.get("/v1/calls", params), 400)
        assert name in body["errors"] and name in body["message"]

    @pytest.mark.parametrize(
        "params",
        [
            {"created_after": "0001-01-01T00:00:00Z"},
            {"created_after": "0001-01-01T00:00:00-23:59"},
            {"created_before": "9999-12-31"},
            {"created_before": "9999-12-31T23:59:59+23:59"},
        ],
    )
    def test_the_edges_of_the_range_are_accepted(self, api, make_call, params):
        make_call()
        response = api.get("/v1/calls", params)
        assert response.status_code == 200, response.content
        assert response.json()["meta"]["total"] == 1

    def test_dates_with_an_offset_are_compared_in_utc(self, api, make_call):
        call = make_call()
        created = call.created_at
        later_in_utc = (created.replace(microsecond=0)).isoformat().replace("+00:00", "-02:00")
        assert api.get("/v1/calls", {"created_after": later_in_utc}).json()["meta"]["total"] == 0


# --------------------------------------------------------------------------------- ids


@pytest.mark.django_db
@pytest.mark.usefixtures("no_tracebacks")
class TestIds:
    @pytest.mark.parametrize(
        "path",
        [
            "/v1/widgets/665E4A34C65BB95F2F2D72E1",  # upper case
            "/v1/widgets/665e4a34c65bb95f2f2d72e",  # 23 characters
            "/v1/widgets/665e4a34c65bb95f2f2d72e1a/public",  # 25
            "/v1/assistants/'%20OR%201=1",
            "/v1/calls/..%2F..%2Fetc",
        ],
    )
    def test_a_malformed_path_id_is_a_json_404_with_no_query(
        self, api, path, django_assert_num_queries
    ):
        with django_assert_num_queries(0):
            response = api.get(path)
        assert response.status_code == 404
        assert response.json() == {"status": False, "message": "Not found."}

    @pytest.mark.parametrize(
        "path, body, field",
        [
            ("/v1/widgets/create-call", {"widget_id": "not-an-id"}, "widget_id"),
            ("/v1/widgets/create-call", {"widget_id": "665E4A34C65BB95F2F2D72E1"}, "widget_id"),
            ("/v1/calls/initiate", {"assistantId": "x" * 24, "type": "web"}, "assistantId"),
        ],
    )
    def test_a_malformed_id_in_a_body_is_a_400_naming_it(self, api, path, body, field):
        payload = assert_envelope(api.post(path, body), 400)
        assert field in payload["errors"]
        assert "24 lower-case hex" in payload["message"]

    def test_a_malformed_assistant_id_on_a_widget_is_a_400(self, api, widget):
        payload = assert_envelope(api.patch(f"/v1/widgets/{widget.id}", {"assistantId": "x"}), 400)
        assert "assistantId" in payload["errors"]
        widget.refresh_from_db()
        assert widget.assistant_id is not None


# ------------------------------------------------------------------------ a real daphne


@pytest.fixture(scope="module")
def daphne():
    server: LiveServer = start_server(extra_env={"WEBRTC_ENABLED": "0"})
    try:
        yield server
    finally:
        server.stop()


def wait_for_log(server: LiveServer, needle: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = server.log_text()
        if needle in text or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


class TestRealDaphne:
    @pytest.mark.parametrize(
        "method, path",
        [
            ("POST", "/v1/widgets/create-call"),
            ("POST", "/v1/assistants"),
            ("PATCH", "/v1/widgets/{widget}"),
        ],
    )
    @pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
    def test_a_5_mb_body_without_a_key_is_413_in_the_envelope(self, daphne, method, path, chunked):
        widget = daphne.create_widget()
        payload = b'{"widget_id": "' + b"a" * FIVE_MB + b'"}'
        # A generator body goes out with Transfer-Encoding: chunked and no Content-Length.
        content = (
            (payload[i : i + 65536] for i in range(0, len(payload), 65536)) if chunked else payload
        )
        response = httpx.request(
            method,
            f"{daphne.page_base}{path.format(widget=widget['id'])}",
            content=content,
            headers={"Content-Type": "application/json", "Origin": ORIGIN},
            timeout=60,
        )
        if chunked:
            assert "content-length" not in {k.lower() for k in response.request.headers}
        assert response.status_code == 413, response.text
        assert response.json()["status"] is False
        assert daphne.api("GET", f"/widgets/{widget['id']}", expect=200)["status"] is True

    def test_a_small_chunked_body_is_read_like_any_other(self, daphne):
        payload = json.dumps({**BASE, "name": "Chunked"}).encode()
        response = httpx.post(
            f"{daphne.page_base}/v1/assistants",
            content=(payload[i : i + 16] for i in range(0, len(payload), 16)),
            headers={"Content-Type": "application/json", "X-API-Key": daphne.api_key},
            timeout=30,
        )
        assert "content-length" not in {k.lower() for k in response.request.headers}
        assert response.status_code == 201, response.text
        assert response.json()["data"]["name"] == "Chunked"

    def test_deep_json_and_a_nul_id_are_client_errors_and_leave_no_traceback(self, daphne):
        deep = httpx.post(
            f"{daphne.page_base}/v1/widgets/create-call",
            content=nested(100_000),
            headers={"Content-Type": "application/json", "Origin": ORIGIN},
            timeout=30,
        )
        assert deep.status_code == 400 and deep.json()["status"] is False
        nul = httpx.get(f"{daphne.page_base}/v1/widgets/%00/public", timeout=30)
        assert nul.status_code == 404 and nul.json() == {"status": False, "message": "Not found."}
        assert daphne.api("GET", "/assistants", expect=200)["status"] is True
        log = wait_for_log(daphne, "/v1/widgets/%00/public")
        assert "Traceback" not in log and "RecursionError" not in log

    def test_secret_query_parameters_are_redacted_from_the_access_log(self, daphne):
        response = httpx.get(
            f"{daphne.page_base}/v1/widgets?api_key=SECRET-IN-QUERY&token=X-TOKEN-X&limit=5",
            timeout=30,
        )
        assert response.status_code == 401  # a key is never read from the query string

        log = wait_for_log(daphne, "limit=5")
        line = next(li for li in log.splitlines() if "/v1/widgets?" in li and "limit=5" in li)
        assert "api_key=[redacted]" in line and "token=[redacted]" in line
        assert "SECRET-IN-QUERY" not in log and "X-TOKEN-X" not in log
