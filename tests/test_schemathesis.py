"""Schemathesis over `/v1/schema/`, against a real daphne, fed real ids: every operation answers
only what the schema documents (a documented status, its content type, a body that conforms,
documented headers) and never a 5xx.

Before the run, the server gets an assistant, a widget (with that assistant and an allowed
origin), a call (`POST /v1/calls/initiate`) and, where the webhooks app is installed, a webhook
endpoint and one of its deliveries; their ids fill the path parameters (`widget_id`, ...) and
the ids inside bodies (`assistantId`, `widget_id`). Updates and deletes get objects of their
own, so that the other operations keep finding theirs as they were.

Each operation is one test: SCHEMATHESIS_MAX_EXAMPLES examples (default 40; positive and
negative data mixed), derandomized so that a run is reproducible; the whole module takes about a
minute on two cores. Nothing is excluded: the recording download (audio/wav) is checked like the
rest (its call has no recording: the documented 404). Create-call may meet its rate limit
during the run (a documented 429); a second server, with the rate limit and the concurrency
limit at their smallest, shows that both answers are documented and conform.

The operations come from the schema the app generates (one test each, named after it); a first
test checks that the live server serves exactly those.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator

import pytest
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.e2e.liveserver import LiveServer, start_server

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "40"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
ALLOWED_ORIGIN = "https://app.example.com"
# Static checks only (see webhooks.services.webhook_url_check): nothing is ever sent there, as
# no job worker runs beside this server (JOBS_SYNC=0).
WEBHOOK_URL = "https://hooks.example.com/voice"


def documented_operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every operation in the app's own schema, at collection time."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return sorted(
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    )


OPERATIONS = documented_operations()
WEBHOOKS = any(path.startswith("/v1/webhooks") for _, path in OPERATIONS)  # the app is installed
PHONES = any(path.startswith("/v1/phone-numbers") for _, path in OPERATIONS)  # telephony is
# Phone numbers are unique across organizations: each object set gets its own.
PHONE_NUMBERS = (f"+1415555{n:04d}" for n in itertools.count(2000))


@pytest.fixture(scope="module")
def live_api(tmp_path_factory) -> Iterator[LiveServer]:
    server = start_server(
        tmp_path_factory.mktemp("schemathesis"),
        extra_env={"WEBRTC_ENABLED": "0", "JOBS_SYNC": "0"},
    )
    try:
        yield server
    finally:
        died = not server.alive()
        log = server.log_text()
        server.stop()
        if died:
            pytest.fail(f"daphne died during the schemathesis run; its log:\n{log}", False)


@pytest.fixture(scope="module")
def ids(live_api: LiveServer) -> dict[str, dict[str, str]]:
    """Real objects of the key's organization by the path parameter that names them: for the
    reads, and separate ones for PATCH (which may disable an assistant or an endpoint) and for
    DELETE, so that every operation keeps finding its objects as they were."""

    def objects() -> dict[str, str]:
        assistant = live_api.create_assistant()
        widget = live_api.create_widget(
            assistantId=assistant["id"], allowed_origins=[ALLOWED_ORIGIN]
        )
        made = {"assistant_id": assistant["id"], "widget_id": widget["id"]}
        if WEBHOOKS:
            webhook = live_api.api("POST", "/webhooks", {"url": WEBHOOK_URL}, expect=201)
            made["webhook_id"] = webhook["data"]["id"]
        if PHONES:
            # Nothing is placed: no job worker runs beside this server (JOBS_SYNC=0).
            account = live_api.api(
                "POST",
                "/telephony/twilio-accounts",
                {
                    "name": "Main",
                    "account_sid": "AC" + secrets.token_hex(16),
                    "auth_token": "f" * 32,
                },
                expect=201,
            )
            number = live_api.api(
                "POST",
                "/phone-numbers",
                {
                    "number": next(PHONE_NUMBERS),
                    "twilio_account_id": account["data"]["id"],
                    "assistant_id": assistant["id"],
                },
                expect=201,
            )
            made["account_id"] = account["data"]["id"]
            made["phone_number_id"] = number["data"]["id"]
        return made

    read = objects()
    call = live_api.api(
        "POST", "/calls/initiate", {"assistantId": read["assistant_id"], "type": "web"}, expect=201
    )
    read["call_id"] = call["callId"]
    if WEBHOOKS:
        test = live_api.api("POST", f"/webhooks/{read['webhook_id']}/test", expect=202)
        read["delivery_id"] = test["data"]["id"]
    return {"read": read, "PATCH": objects(), "DELETE": objects()}


def schema_of(server: LiveServer, config: dict):
    return schemathesis.openapi.from_url(
        f"{server.page_base}/v1/schema/?format=json",
        config=schemathesis.Config.from_dict(
            {
                "headers": {"X-API-Key": server.api_key},
                # A 503 is the documented answer of a server at its concurrency limit (with
                # Retry-After), not a server error; status_code_conformance still refuses it
                # wherever it is not documented.
                "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", 503]}},
                **config,
            }
        ),
    )


@pytest.fixture(scope="module")
def live_schema(live_api: LiveServer, ids: dict[str, dict[str, str]]):
    read = ids["read"]
    return schema_of(
        live_api,
        {
            "dictionaries": {"webhook-urls": {"values": [WEBHOOK_URL]}},
            "parameters": {
                # Ids inside bodies (initiate's and a widget's assistantId, create-call's
                # widget_id), and half the time a webhook URL the endpoint accepts.
                "body.assistantId": read["assistant_id"],
                "body.widget_id": read["widget_id"],
                # The phone API's: a number's account and assistant, phone initiate's number.
                **(
                    {
                        "body.twilio_account_id": read["account_id"],
                        "body.assistant_id": read["assistant_id"],
                        "body.phone_purchase_id": read["phone_number_id"],
                    }
                    if PHONES
                    else {}
                ),
                "body.url": {"dictionary": "webhook-urls", "probability": 0.5},
            },
        },
    )


def path_parameters(operation, ids: dict[str, dict[str, str]]) -> dict[str, str]:
    objects = ids.get(operation.method.upper(), ids["read"])
    return {parameter.name: objects[parameter.name] for parameter in operation.path_parameters}


def test_the_live_server_serves_the_documented_operations(live_schema):
    served = sorted(
        (result.ok().method.upper(), result.ok().path)
        for result in live_schema.get_all_operations()
    )
    assert served == OPERATIONS


@pytest.mark.parametrize(
    "method, path", OPERATIONS, ids=[f"{method} {path}" for method, path in OPERATIONS]
)
def test_operation_answers_only_what_the_schema_documents(
    live_api: LiveServer, live_schema, ids: dict[str, dict[str, str]], method: str, path: str
):
    operation = live_schema[path][method]
    fixed = path_parameters(operation, ids)
    strategy = st.one_of(
        operation.as_strategy(generation_mode=mode, path_parameters=fixed)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    )

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case) -> None:
        case.call_and_validate(checks=CHECKS, timeout=30)

    try:
        run()
    except BaseException:
        print(f"daphne's log (tail):\n{live_api.log_text()[-5000:]}")
        raise


@pytest.fixture(scope="module")
def busy_api(tmp_path_factory) -> Iterator[LiveServer]:
    """A server that carries one call at a time and allows two create-calls a minute."""
    server = start_server(
        tmp_path_factory.mktemp("schemathesis-busy"),
        extra_env={"WEBRTC_ENABLED": "0", "MAX_CONCURRENT_CALLS": "1", "WIDGET_CALL_RATE": "2/min"},
    )
    try:
        yield server
    finally:
        server.stop()


def test_busy_and_throttled_call_starts_answer_as_documented(busy_api: LiveServer):
    assistant = busy_api.create_assistant()
    widget = busy_api.create_widget(assistantId=assistant["id"], allowed_origins=[ALLOWED_ORIGIN])
    schema = schema_of(busy_api, {})
    initiate = schema["/v1/calls/initiate"]["POST"]
    create_call = schema["/v1/widgets/create-call"]["POST"]
    attempts = [
        (initiate, {"assistantId": assistant["id"], "type": "web"}),  # the one call it carries
        (initiate, {"assistantId": assistant["id"], "type": "web"}),  # busy
        (create_call, {"widget_id": widget["id"]}),  # busy (the rate limit counts it)
        (create_call, {"widget_id": widget["id"]}),  # busy
        (create_call, {"widget_id": widget["id"]}),  # over the rate
    ]
    statuses = []
    for operation, body in attempts:
        case = operation.Case(body=body, headers={"X-API-Key": busy_api.api_key})
        response = case.call(timeout=30)
        case.validate_response(response, checks=CHECKS)
        statuses.append(response.status_code)
        if response.status_code in (429, 503):
            [retry_after] = response.headers["retry-after"]  # lower-case names, value lists
            assert int(retry_after) > 0

    assert statuses == [201, 503, 503, 503, 429]
