"""Delivery as Standard Webhooks: rows made in the event's transaction, signed POSTs verified
by the `standardwebhooks` package, the retry schedule on a controllable clock (`now=`),
Retry-After, dead letters, disabling, the outbound guard at send time, claims and the sweeper."""

from __future__ import annotations

import email.utils
import json
import socket
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

import jobs
from calls import services as call_services
from calls.events import event_recorded
from calls.models import Call, CallEvent
from tests.webhooks.fixtures import *  # noqa: F403 (the fixtures: see that module)
from tests.webhooks.receiver import Answer, Receiver, SilentServer, free_port
from webhooks import delivery as webhook_delivery
from webhooks.delivery import (
    AUTO_DISABLE_AFTER,
    LEASE,
    REQUEUE_AFTER,
    SCHEDULE,
    claim,
    deliver,
    parse_retry_after,
    retry_delay,
    sweep,
)
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import (
    deliveries_create_for_event,
    delivery_replay,
    endpoint_rotate_secret,
    endpoint_send_test,
)


def ping(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A pending delivery due now (its queue message never runs: `db` tests never commit)."""
    return endpoint_send_test(endpoint=endpoint)


def signed_by(secret: str, received) -> bool:
    """Checks the signature by hand with the package's signer (for clock-shifted timestamps
    that `Webhook.verify` would refuse as too new)."""
    timestamp = datetime.fromtimestamp(int(received.headers["webhook-timestamp"]), tz=UTC)
    expected = Webhook(secret).sign(
        received.headers["webhook-id"], timestamp, received.body.decode()
    )
    return expected in received.headers["webhook-signature"].split(" ")


# ------------------------------------------------------------------------------ from call events


@pytest.mark.django_db(transaction=True)
def test_call_event_is_delivered_after_commit_and_verifies_with_standardwebhooks(
    organization, assistant, make_endpoint
):
    with Receiver() as receiver:
        endpoint, secret = make_endpoint(receiver.url)
        receiver.secrets = [secret]

        call, _ = call_services.call_create(organization=organization, assistant=assistant)

    event = CallEvent.objects.get(call=call, type="call.created")
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.verified_by == [0]
    assert got.headers["webhook-id"] == event.id
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"].startswith("VoiceWidgetPlatform-Webhooks/")
    assert abs(int(got.headers["webhook-timestamp"]) - timezone.now().timestamp()) < 60
    body = got.json
    assert set(body) == {"type", "timestamp", "data"}
    assert body["type"] == "call.created"
    assert body["timestamp"] == event.created_at.isoformat().replace("+00:00", "Z")
    assert body["data"]["call_id"] == call.id
    assert body["data"]["assistant_id"] == assistant.id
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.event_id == event.id
    assert [(a.number, a.status_code, a.outcome) for a in delivery.attempts.all()] == [
        (1, 200, "delivered")
    ]
    endpoint.refresh_from_db()
    assert endpoint.last_success_at is not None and endpoint.failing_since is None


@pytest.mark.django_db(transaction=True)
def test_rolled_back_event_leaves_no_delivery_and_sends_nothing(
    organization, assistant, make_endpoint
):
    with Receiver() as receiver:
        make_endpoint(receiver.url)
        with pytest.raises(RuntimeError), transaction.atomic():
            call_services.call_create(organization=organization, assistant=assistant)
            assert WebhookDelivery.objects.count() == 1  # written inside the transaction
            raise RuntimeError("the change fails")

    assert WebhookDelivery.objects.count() == 0
    assert receiver.received == []
    assert receiver.connections == 0


@pytest.mark.django_db
def test_deliveries_go_only_to_enabled_subscribed_endpoints_of_the_events_organization(
    organization, other_organization, assistant, make_endpoint
):
    everything, _ = make_endpoint("https://a.example.com/hook")
    star, _ = make_endpoint("https://b.example.com/hook", events=["*"])
    created_only, _ = make_endpoint("https://c.example.com/hook", events=["call.created"])
    make_endpoint("https://d.example.com/hook", events=["call.ended"])
    make_endpoint("https://e.example.com/hook", enabled=False)
    make_endpoint("https://f.example.com/hook", org=other_organization)

    call, _ = call_services.call_create(organization=organization, assistant=assistant)

    rows = WebhookDelivery.objects.filter(event_type="call.created")
    assert {d.endpoint_id for d in rows} == {everything.id, star.id, created_only.id}
    event = CallEvent.objects.get(call=call, type="call.created")
    assert {d.event_id for d in rows} == {event.id}
    assert all(d.status == DeliveryStatus.PENDING and d.next_attempt_at for d in rows)
    assert all(d.organization_id == organization.id for d in rows)


@pytest.mark.django_db
def test_the_signal_receiver_makes_one_delivery_per_endpoint_and_event(organization, make_endpoint):
    """Sending `event_recorded` ourselves, with a hand-made event, as `calls` does."""
    make_endpoint("https://a.example.com/hook")
    call = Call.objects.create(organization=organization)
    with transaction.atomic():
        event = CallEvent.objects.create(
            organization=organization, call=call, seq=1, type="call.ended", payload={"x": 1}
        )
        event_recorded.send(sender=CallEvent, event=event)

    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == "call.ended" and delivery.event_id == event.id
    assert json.loads(delivery.body)["data"] == {"call_id": call.id, "event_seq": 1, "x": 1}
    with pytest.raises(IntegrityError), transaction.atomic():  # unique (endpoint, event)
        deliveries_create_for_event(event=event)


# ------------------------------------------------------------------------------ rotation


@pytest.mark.django_db
def test_during_rotation_both_old_and_new_secret_verify(make_endpoint):
    with Receiver() as receiver:
        endpoint, old = make_endpoint(receiver.url)
        new = endpoint_rotate_secret(endpoint=endpoint)
        receiver.secrets = [old, new]

        assert deliver(ping(endpoint).id) == "delivered"

    got = receiver.received[0]
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert got.verified_by == [0, 1]


@pytest.mark.django_db
def test_after_24_hours_only_the_new_secret_signs(make_endpoint):
    with Receiver() as receiver:
        endpoint, old = make_endpoint(receiver.url)
        # Rotated a day and a second ago: the old secret has just expired.
        new = endpoint_rotate_secret(
            endpoint=endpoint, now=timezone.now() - timedelta(hours=24, seconds=1)
        )
        receiver.secrets = [old, new]

        assert deliver(ping(endpoint).id) == "delivered"

    got = receiver.received[0]
    assert len(got.headers["webhook-signature"].split(" ")) == 1
    assert got.verified_by == [1]


# ------------------------------------------------------------------------------ the schedule


@pytest.mark.django_db
def test_5xx_is_retried_on_the_schedule_with_jitter_then_fails(make_endpoint):
    with Receiver() as receiver:
        receiver.answer(*[Answer(503) for _ in range(len(SCHEDULE) + 1)])
        endpoint, secret = make_endpoint(receiver.url)
        delivery = ping(endpoint)
        now = delivery.next_attempt_at
        waits = []
        for _ in SCHEDULE:
            assert deliver(delivery.id, now=now) == "retry"
            delivery.refresh_from_db()
            assert delivery.status == DeliveryStatus.PENDING
            waits.append(delivery.next_attempt_at - now)
            # Not due yet: nothing is sent a moment before the scheduled time.
            assert deliver(delivery.id, now=delivery.next_attempt_at - timedelta(seconds=1)) == (
                "skipped"
            )
            now = delivery.next_attempt_at
        assert deliver(delivery.id, now=now) == "failed"

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.next_attempt_at is None
    for wait, step in zip(waits, SCHEDULE, strict=True):
        assert step * 0.9 <= wait <= step * 1.1, (wait, step)
    assert (
        len({w.total_seconds() / s.total_seconds() for w, s in zip(waits, SCHEDULE, strict=True)})
        > 1
    )
    attempts = list(delivery.attempts.all())
    assert [a.number for a in attempts] == list(range(1, len(SCHEDULE) + 2))
    assert {(a.status_code, a.error) for a in attempts} == {(503, "HTTP 503")}
    assert [a.outcome for a in attempts] == ["retry"] * len(SCHEDULE) + ["failed"]
    # Every attempt sent the same message: same webhook-id and body, signed each time.
    assert len(receiver.received) == len(SCHEDULE) + 1
    assert {r.headers["webhook-id"] for r in receiver.received} == {delivery.event_id}
    assert {r.body for r in receiver.received} == {delivery.body.encode()}
    assert all(signed_by(secret, r) for r in receiver.received)


def test_retry_delay_schedule_bounds_and_exhaustion():
    assert retry_delay(0) is None
    assert retry_delay(len(SCHEDULE) + 1) is None
    for step, base in enumerate(SCHEDULE, start=1):
        for _ in range(20):
            assert base * 0.9 <= retry_delay(step) <= base * 1.1


NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "header, expected",
    [
        ("120", timedelta(seconds=120)),
        (" 30 ", timedelta(seconds=30)),
        (email.utils.format_datetime(NOW + timedelta(hours=1), usegmt=True), timedelta(hours=1)),
        ("Fri, 01 May 2026 11:00:00 GMT", timedelta(0)),  # in the past: no extra wait
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after_reads_seconds_and_http_dates(header, expected):
    assert parse_retry_after(header, now=NOW) == expected


@pytest.mark.django_db
@pytest.mark.parametrize(
    "retry_after, low, high",
    [
        ("120", timedelta(seconds=120), timedelta(seconds=120)),  # later than 5 s: honoured
        ("1", SCHEDULE[0] * 0.9, SCHEDULE[0] * 1.1),  # earlier than the schedule: schedule
        ("999999999", timedelta(hours=24), timedelta(hours=24)),  # capped at 24 h
        ("date+3h", timedelta(hours=3) - timedelta(seconds=1), timedelta(hours=3)),
    ],
    ids=["seconds", "too-soon", "capped", "http-date"],
)
def test_retry_after_is_honoured_capped_and_never_earlier_than_the_schedule(
    make_endpoint, retry_after, low, high
):
    with Receiver() as receiver:
        endpoint, _ = make_endpoint(receiver.url)
        delivery = ping(endpoint)
        now = delivery.next_attempt_at
        if retry_after == "date+3h":
            retry_after = email.utils.format_datetime(now + timedelta(hours=3), usegmt=True)
        receiver.answer(Answer(429, headers={"Retry-After": retry_after}))

        assert deliver(delivery.id, now=now) == "retry"

    delivery.refresh_from_db()
    assert low <= delivery.next_attempt_at - now <= high


@pytest.mark.django_db
@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_retryable_answers_are_retried(make_endpoint, status):
    with Receiver() as receiver:
        receiver.answer(Answer(status))
        endpoint, _ = make_endpoint(receiver.url)
        delivery = ping(endpoint)
        assert deliver(delivery.id) == "retry"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING
    assert delivery.last_status_code == status


@pytest.mark.django_db
@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_delivered(make_endpoint, status):
    with Receiver() as receiver:
        receiver.answer(Answer(status, body=b"" if status == 204 else b"ok"))
        endpoint, _ = make_endpoint(receiver.url)
        delivery = ping(endpoint)
        assert deliver(delivery.id) == "delivered"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.delivered_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_other_4xx_fails_at_once_without_retry(make_endpoint, status):
    with Receiver() as receiver:
        receiver.answer(Answer(status, body=b'{"error": "nope"}'))
        endpoint, _ = make_endpoint(receiver.url)
        delivery = ping(endpoint)
        assert deliver(delivery.id) == "failed"
        assert deliver(delivery.id, now=timezone.now() + timedelta(days=2)) == "skipped"

    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.next_attempt_at is None
    attempt = delivery.attempts.get()
    assert (attempt.status_code, attempt.response_body) == (status, '{"error": "nope"}')
    assert len(receiver.received) == 1
    endpoint.refresh_from_db()
    assert endpoint.enabled  # one refusal does not disable an endpoint


@pytest.mark.django_db
def test_410_fails_and_disables_the_endpoint_and_its_pending_deliveries_are_not_sent(
    make_endpoint,
):
    with Receiver() as receiver:
        receiver.answer(Answer(410))
        endpoint, _ = make_endpoint(receiver.url)
        first, second = ping(endpoint), ping(endpoint)

        assert deliver(first.id) == "failed"
        assert deliver(second.id) == "failed"

    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert "410" in endpoint.disabled_reason
    assert endpoint.disabled_at is not None
    assert len(receiver.received) == 1  # the second was never sent
    second.refresh_from_db()
    assert second.status == DeliveryStatus.FAILED
    assert "endpoint is disabled" in second.last_error


@pytest.mark.django_db
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_are_not_followed_and_count_as_failures(make_endpoint, status):
    with Receiver() as elsewhere, Receiver() as receiver:
        receiver.answer(Answer(status, headers={"Location": elsewhere.url}))
        endpoint, _ = make_endpoint(receiver.url)
        delivery = ping(endpoint)

        assert deliver(delivery.id) == "retry"

    assert elsewhere.received == [] and elsewhere.connections == 0
    attempt = delivery.attempts.get()
    assert attempt.status_code == status
    assert "redirect" in attempt.error and elsewhere.url in attempt.error


@pytest.mark.django_db
def test_time_out_is_retried(make_endpoint, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    with SilentServer() as silent:
        endpoint, _ = make_endpoint(silent.url)
        delivery = ping(endpoint)
        assert deliver(delivery.id) == "retry"
    attempt = delivery.attempts.get()
    assert attempt.status_code is None
    assert "timed out" in attempt.error


@pytest.mark.django_db
def test_connection_refused_is_retried(make_endpoint):
    endpoint, _ = make_endpoint(f"http://127.0.0.1:{free_port()}/hooks")
    delivery = ping(endpoint)
    assert deliver(delivery.id) == "retry"
    attempt = delivery.attempts.get()
    assert attempt.status_code is None
    assert attempt.error.startswith("connection error")


@pytest.mark.django_db
def test_attempt_log_keeps_the_first_kilobyte_of_the_answer_and_the_latency(make_endpoint):
    with Receiver() as receiver:
        receiver.answer(Answer(500, body="é".encode() + b"x" * 5000))
        endpoint, _ = make_endpoint(receiver.url)
        delivery = ping(endpoint)
        deliver(delivery.id)
    attempt = delivery.attempts.get()
    assert attempt.response_body.startswith("éx")
    assert len(attempt.response_body.encode()) <= 1024 + 3
    assert len(attempt.response_body) >= 1000
    assert attempt.latency_ms is not None and attempt.latency_ms >= 0


# ------------------------------------------------------------------------------ auto-disable


@pytest.mark.django_db
def test_endpoint_failing_for_five_days_with_no_success_is_disabled_with_a_reason(make_endpoint):
    with Receiver() as receiver:
        receiver.answer(*[Answer(400) for _ in range(3)])
        endpoint, _ = make_endpoint(receiver.url)
        first, second, third = ping(endpoint), ping(endpoint), ping(endpoint)
        t0 = timezone.now()

        assert deliver(first.id, now=t0) == "failed"
        assert deliver(second.id, now=t0 + AUTO_DISABLE_AFTER - timedelta(minutes=1)) == "failed"
        endpoint.refresh_from_db()
        assert endpoint.enabled and endpoint.failing_since == t0

        assert deliver(third.id, now=t0 + AUTO_DISABLE_AFTER) == "failed"

    endpoint.refresh_from_db()
    assert not endpoint.enabled
    assert "5 days" in endpoint.disabled_reason
    assert endpoint.disabled_at == t0 + AUTO_DISABLE_AFTER


@pytest.mark.django_db
def test_a_success_restarts_the_five_day_clock(make_endpoint):
    with Receiver() as receiver:
        receiver.answer(Answer(400), Answer(200), Answer(400), Answer(400))
        endpoint, _ = make_endpoint(receiver.url)
        pings = [ping(endpoint) for _ in range(4)]
        t0 = timezone.now()

        assert deliver(pings[0].id, now=t0) == "failed"
        assert deliver(pings[1].id, now=t0 + timedelta(days=3)) == "delivered"
        assert deliver(pings[2].id, now=t0 + timedelta(days=4)) == "failed"
        assert deliver(pings[3].id, now=t0 + AUTO_DISABLE_AFTER + timedelta(hours=1)) == "failed"

    endpoint.refresh_from_db()
    assert endpoint.enabled
    assert endpoint.failing_since == t0 + timedelta(days=4)
    assert endpoint.last_success_at == t0 + timedelta(days=3)


# ------------------------------------------------------------------------------ the guard


def fake_dns(monkeypatch, name: str, address: str | None):
    """Make `name` resolve to `address` (None: does not resolve); other names as usual."""
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host == name:
            if address is None:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [(family, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.django_db
def test_host_resolving_to_loopback_is_refused_at_send_time_and_nothing_connects(
    make_endpoint, settings, monkeypatch
):
    with Receiver() as receiver:
        fake_dns(monkeypatch, "hooks.example.test", "127.0.0.1")
        endpoint, _ = make_endpoint(f"http://hooks.example.test:{receiver.port}/hooks")
        delivery = ping(endpoint)
        settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

        assert deliver(delivery.id) == "failed"
        assert receiver.connections == 0 and receiver.received == []

        # The control: the same delivery does reach the listener when private addresses
        # are allowed, so it was the guard that stopped it.
        settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True
        delivery_replay(delivery=delivery)
        assert deliver(delivery.id) == "delivered"
        assert receiver.connections == 1

    first = delivery.attempts.order_by("number").first()
    assert first.outcome == "failed" and first.status_code is None
    assert first.error == "refused: the host resolves to a loopback address"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "address, reason",
    [
        ("10.1.2.3", "a private address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("::ffff:192.168.1.1", "a private address"),
    ],
)
def test_private_and_metadata_addresses_are_refused_before_any_connection(
    make_endpoint, settings, monkeypatch, address, reason
):
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False
    endpoint, _ = make_endpoint("https://hooks.example.test/hooks")
    delivery = ping(endpoint)
    fake_dns(monkeypatch, "hooks.example.test", address)
    connects = []

    def no_connect(*args, **kwargs):
        connects.append(args)
        raise AssertionError("nothing may connect")

    monkeypatch.setattr(socket, "create_connection", no_connect)
    monkeypatch.setattr(socket.socket, "connect", no_connect)

    assert deliver(delivery.id) == "failed"

    assert connects == []
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.last_error == f"refused: the host resolves to {reason}"
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None  # a refusal counts toward auto-disable


@pytest.mark.django_db
def test_url_refused_statically_at_send_time_fails_without_connecting(make_endpoint, settings):
    with Receiver() as receiver:
        endpoint, _ = make_endpoint(receiver.url)  # http was allowed when it was made
        delivery = ping(endpoint)
        settings.WEBHOOK_ALLOW_HTTP = False

        assert deliver(delivery.id) == "failed"

    assert receiver.connections == 0
    delivery.refresh_from_db()
    assert delivery.last_error == "refused: only https URLs are allowed"


@pytest.mark.django_db
def test_a_name_that_does_not_resolve_is_retried_like_a_connection_error(
    make_endpoint, monkeypatch
):
    fake_dns(monkeypatch, "gone.example.test", None)
    endpoint, _ = make_endpoint("https://gone.example.test/hooks")
    delivery = ping(endpoint)

    assert deliver(delivery.id) == "retry"

    assert "does not resolve" in delivery.attempts.get().error


# ------------------------------------------------------------------------------ claims, sweeper


@pytest.mark.django_db
def test_an_attempt_is_claimed_once(make_endpoint):
    with Receiver() as receiver:
        endpoint, _ = make_endpoint(receiver.url)
        delivery = ping(endpoint)
        now = timezone.now()

        assert claim(delivery.id, now=now) is not None
        assert claim(delivery.id, now=now) is None  # a second worker gets nothing
        assert deliver(delivery.id, now=now) == "skipped"

    assert receiver.received == []


@pytest.mark.django_db
def test_an_attempt_left_by_a_killed_worker_is_retried_once_its_lease_expires(
    make_endpoint, monkeypatch
):
    queued = []
    monkeypatch.setattr(jobs, "enqueue", lambda func, *args: queued.append((func, *args)))
    with Receiver() as receiver:
        endpoint, _ = make_endpoint(receiver.url)
        delivery = ping(endpoint)
        t = timezone.now()
        assert claim(delivery.id, now=t)  # ...and the worker dies before sending

        held = t + LEASE - timedelta(seconds=1)
        assert deliver(delivery.id, now=held) == "skipped"
        assert sweep(now=held) == []
        expired = t + LEASE + timedelta(seconds=1)
        assert sweep(now=expired) == [delivery.id]
        assert queued == [("webhooks.delivery.deliver", delivery.id)]
        assert deliver(delivery.id, now=expired) == "delivered"

    assert len(receiver.received) == 1
    delivery.refresh_from_db()
    assert delivery.attempt_count == 2
    assert [a.number for a in delivery.attempts.all()] == [2]


@pytest.mark.django_db
def test_sweeper_queues_due_retries_and_lost_messages_but_not_live_ones(make_endpoint, monkeypatch):
    queued = []
    monkeypatch.setattr(jobs, "enqueue", lambda func, *args: queued.append(args[0]))
    with Receiver() as receiver:
        receiver.answer(Answer(503))
        endpoint, _ = make_endpoint(receiver.url)
        fresh = ping(endpoint)  # queued on commit a moment ago
        retrying = ping(endpoint)
        t = timezone.now()
        assert deliver(retrying.id, now=t) == "retry"
        retrying.refresh_from_db()

        assert sweep(now=t) == []  # fresh's message is on its way; the retry is not due
        due = retrying.next_attempt_at
        assert sweep(now=due - timedelta(seconds=1)) == []
        assert sweep(now=due) == [retrying.id]  # its time has come
        assert sweep(now=due) == []  # just queued: not again
        lost = fresh.enqueued_at + REQUEUE_AFTER
        assert sweep(now=lost - timedelta(seconds=1)) == []
        assert sweep(now=lost) == [fresh.id]  # its message was lost
        assert queued == [retrying.id, fresh.id]


@pytest.mark.django_db
def test_sweeper_runs_deliveries_in_line_with_jobs_sync(make_endpoint, settings):
    settings.JOBS_SYNC = True
    with Receiver() as receiver:
        endpoint, secret = make_endpoint(receiver.url)
        receiver.secrets = [secret]
        delivery = ping(endpoint)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(enqueued_at=None)

        assert sweep() == [delivery.id]

    assert receiver.received[0].verified_by == [0]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED


@pytest.mark.django_db
def test_deliver_is_a_no_op_for_unknown_done_or_future_deliveries(make_endpoint):
    with Receiver() as receiver:
        endpoint, _ = make_endpoint(receiver.url)
        delivery = ping(endpoint)
        assert deliver("0" * 24) == "skipped"
        assert deliver(delivery.id, now=delivery.next_attempt_at - timedelta(seconds=1)) == (
            "skipped"
        )
        assert deliver(delivery.id) == "delivered"
        assert deliver(delivery.id) == "skipped"
    assert len(receiver.received) == 1


def test_delivery_module_names_the_entry_points_jobs_call():
    # The lead's worker and fault tests import these dotted paths.
    assert callable(webhook_delivery.deliver) and callable(webhook_delivery.sweep)
    assert jobs.PERIODIC["webhooks.delivery.sweep"] == 15


@pytest.mark.django_db
def test_endpoint_deleted_during_an_attempt_ends_it_quietly(make_endpoint, monkeypatch):
    endpoint, _ = make_endpoint("https://hooks.example.com/in")
    delivery = ping(endpoint)
    real_send = webhook_delivery.send_attempt

    def send_then_delete(**kwargs):
        WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()
        return webhook_delivery.AttemptResult(status_code=200, latency_ms=1)

    monkeypatch.setattr(webhook_delivery, "send_attempt", send_then_delete)
    assert real_send is not send_then_delete

    assert deliver(delivery.id) == "skipped"
    assert not WebhookDelivery.objects.filter(pk=delivery.pk).exists()


@pytest.mark.django_db
def test_unreadable_secret_sends_nothing_and_retries_so_restoring_the_key_loses_nothing(
    make_endpoint, settings
):
    from cryptography.fernet import Fernet

    with Receiver() as receiver:
        endpoint, secret = make_endpoint(receiver.url)
        receiver.secrets = [secret]
        delivery = ping(endpoint)
        good_keys = settings.FIELD_ENCRYPTION_KEYS
        settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the key was lost

        assert deliver(delivery.id) == "retry"
        assert receiver.connections == 0
        delivery.refresh_from_db()
        assert "Cannot decrypt" in delivery.last_error

        settings.FIELD_ENCRYPTION_KEYS = good_keys
        # Signed now (not at the scheduled time) so `Webhook.verify` accepts the timestamp;
        # the row is made due instead of shifting the clock.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        assert deliver(delivery.id) == "delivered"

    assert receiver.received[0].verified_by == [0]
