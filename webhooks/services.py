"""Writes for webhook endpoints and deliveries."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

import jobs
import netguard
from accounts.crypto import decrypt, encrypt
from accounts.ids import new_object_id
from accounts.models import Organization
from calls.models import CallEvent
from webhooks.catalog import ALL_EVENTS, EVENT_TYPES, PING
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.signing import new_secret

logger = logging.getLogger(__name__)

DELIVER = "webhooks.delivery.deliver"
#: How long the old secret keeps signing after a rotation.
PREVIOUS_SECRET_TTL = timedelta(hours=24)
#: replay-failed queues this many at once; the sweeper wakes the rest within its interval.
REPLAY_ENQUEUE_LIMIT = 500


class InvalidWebhookURL(ValueError):
    """The URL is refused (scheme, host, credentials, a private address...)."""


class InvalidEventTypes(ValueError):
    """Unknown event types in a subscription."""


class EndpointDisabled(Exception):
    """The endpoint is disabled: nothing is sent to it until it is enabled again."""


def webhook_url_check(url: str) -> str:
    """The URL if deliveries may go there (statically: the address is checked again at send
    time, after resolution); else InvalidWebhookURL with the reason."""
    try:
        netguard.check_url(
            url,
            allow_http=settings.WEBHOOK_ALLOW_HTTP,
            allow_private=settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
        )
    except netguard.URLRefused as exc:
        raise InvalidWebhookURL(str(exc) or "This URL is not allowed.") from exc
    return url


def events_normalize(events: Iterable[str] | None) -> list[str]:
    """A subscription list: known types in the given order without duplicates, or ["*"]
    (every type) for an empty list or one containing "*"."""
    events = list(events or [])
    if not events or ALL_EVENTS in events:
        unknown = []
    else:
        unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise InvalidEventTypes(
            f"Unknown event type(s): {', '.join(unknown)}. Known: {', '.join(EVENT_TYPES)} "
            f"(or {ALL_EVENTS} for all)."
        )
    if not events or ALL_EVENTS in events:
        return [ALL_EVENTS]
    return list(dict.fromkeys(events))


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def message_body(*, event_type: str, timestamp: datetime, data: dict[str, Any]) -> str:
    """The JSON body of a message (Standard Webhooks' recommended shape)."""
    return json.dumps(
        {"type": event_type, "timestamp": _iso(timestamp), "data": data},
        cls=DjangoJSONEncoder,
        separators=(",", ":"),
    )


# ------------------------------------------------------------------------------ endpoints


@transaction.atomic
def endpoint_create(
    *,
    organization: Organization,
    url: str,
    description: str = "",
    events: Iterable[str] | None = None,
    enabled: bool = True,
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint; returns it with its signing secret, which is never shown again."""
    secret = new_secret()
    endpoint = WebhookEndpoint.objects.create(
        organization=organization,
        url=webhook_url_check(url),
        description=description,
        events=events_normalize(events),
        enabled=enabled,
        disabled_reason="" if enabled else "Disabled when created.",
        disabled_at=None if enabled else timezone.now(),
        secret_encrypted=encrypt(secret),
    )
    return endpoint, secret


@transaction.atomic
def endpoint_update(*, endpoint: WebhookEndpoint, data: dict[str, Any]) -> WebhookEndpoint:
    """Change url / description / events / enabled. Enabling clears the disabled reason and
    the failure streak (the 5-day clock starts again)."""
    if "url" in data:
        endpoint.url = webhook_url_check(data["url"])
    if "description" in data:
        endpoint.description = data["description"]
    if "events" in data:
        endpoint.events = events_normalize(data["events"])
    if "enabled" in data and data["enabled"] != endpoint.enabled:
        endpoint.enabled = data["enabled"]
        if endpoint.enabled:
            endpoint.disabled_reason, endpoint.disabled_at = "", None
            endpoint.failing_since = None
        else:
            endpoint.disabled_reason, endpoint.disabled_at = "Disabled by a user.", timezone.now()
    endpoint.save()
    return endpoint


def endpoint_delete(*, endpoint: WebhookEndpoint) -> None:
    endpoint.delete()


@transaction.atomic
def endpoint_rotate_secret(*, endpoint: WebhookEndpoint, now: datetime | None = None) -> str:
    """A new signing secret (returned once). The current one keeps signing beside it for 24 h,
    so receivers can switch without losing a message; an older previous secret is dropped."""
    now = now or timezone.now()
    locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
    secret = new_secret()
    locked.previous_secret_encrypted = locked.secret_encrypted
    locked.previous_secret_expires_at = now + PREVIOUS_SECRET_TTL
    locked.secret_encrypted = encrypt(secret)
    locked.secret_rotated_at = now
    locked.save(
        update_fields=[
            "previous_secret_encrypted",
            "previous_secret_expires_at",
            "secret_encrypted",
            "secret_rotated_at",
            "updated_at",
        ]
    )
    for field in ("previous_secret_encrypted", "previous_secret_expires_at", "secret_encrypted"):
        setattr(endpoint, field, getattr(locked, field))
    endpoint.secret_rotated_at = now
    return secret


def endpoint_signing_secrets(*, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign a message sent now: the current one, and the previous one
    while it is still valid."""
    found = [decrypt(endpoint.secret_encrypted)]
    if (
        endpoint.previous_secret_encrypted
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        found.append(decrypt(endpoint.previous_secret_encrypted))
    return found


def endpoint_disable(*, endpoint_id: str, reason: str, now: datetime | None = None) -> bool:
    """Disable an enabled endpoint with a reason (shown in the API and the admin)."""
    now = now or timezone.now()
    changed = WebhookEndpoint.objects.filter(pk=endpoint_id, enabled=True).update(
        enabled=False, disabled_reason=reason[:300], disabled_at=now, updated_at=now
    )
    if changed:
        logger.warning("webhook endpoint %s disabled: %s", endpoint_id, reason)
    return bool(changed)


#: `last_success_at` is refreshed at most this often while an endpoint is healthy: every
#: delivery writing the same endpoint row would serialise the workers on its row lock.
SUCCESS_STAMP_EVERY = timedelta(seconds=10)


def endpoint_record_success(*, endpoint_id: str, now: datetime) -> None:
    WebhookEndpoint.objects.filter(pk=endpoint_id).filter(
        Q(failing_since__isnull=False)
        | Q(last_success_at__isnull=True)
        | Q(last_success_at__lt=now - SUCCESS_STAMP_EVERY)
    ).update(failing_since=None, last_success_at=now)


def endpoint_record_failure(*, endpoint_id: str, now: datetime, disable_after: timedelta) -> bool:
    """Start (or continue) the endpoint's failure streak; disable it once the streak has lasted
    `disable_after` with no success. Returns True if this disabled it."""
    WebhookEndpoint.objects.filter(pk=endpoint_id, failing_since__isnull=True).update(
        failing_since=now
    )
    since = (
        WebhookEndpoint.objects.filter(pk=endpoint_id)
        .values_list("failing_since", flat=True)
        .first()
    )
    if since is None or now - since < disable_after:
        return False
    days = disable_after.days or disable_after.total_seconds() / 86400
    return endpoint_disable(
        endpoint_id=endpoint_id,
        reason=(
            f"Every delivery failed for {days:g} days with no success (failing since "
            f"{_iso(since)}). Fix the receiver, then enable the endpoint and replay failed "
            "deliveries."
        ),
        now=now,
    )


# ------------------------------------------------------------------------------ deliveries


def _enqueue_on_commit(delivery_ids: Iterable[str]) -> None:
    for delivery_id in delivery_ids:
        jobs.enqueue_on_commit(DELIVER, delivery_id)


def deliveries_create_for_event(*, event: CallEvent) -> list[WebhookDelivery]:
    """One pending delivery per enabled endpoint of the event's organization subscribed to its
    type, written in the caller's (the event's) transaction and queued after it commits."""
    endpoints = [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(
            organization_id=event.organization_id, enabled=True
        )
        if endpoint.subscribes_to(event.type)
    ]
    if not endpoints:
        return []
    now = timezone.now()
    body = message_body(
        event_type=event.type,
        timestamp=event.created_at,
        data={"call_id": event.call_id, "event_seq": event.seq, **(event.payload or {})},
    )
    deliveries = WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            organization_id=event.organization_id,
            endpoint=endpoint,
            event_id=event.id,
            event_type=event.type,
            body=body,
            next_attempt_at=now,
            enqueued_at=now,
            created_at=now,
        )
        for endpoint in endpoints
    )
    _enqueue_on_commit(d.id for d in deliveries)
    return deliveries


@transaction.atomic
def endpoint_send_test(
    *, endpoint: WebhookEndpoint, now: datetime | None = None
) -> WebhookDelivery:
    """Queue a `ping` message to this endpoint (whatever it subscribes to)."""
    if not endpoint.enabled:
        raise EndpointDisabled("The endpoint is disabled; enable it first.")
    now = now or timezone.now()
    event_id = new_object_id()
    delivery = WebhookDelivery.objects.create(
        organization_id=endpoint.organization_id,
        endpoint=endpoint,
        event_id=event_id,
        event_type=PING,
        body=message_body(
            event_type=PING,
            timestamp=now,
            data={"webhook_id": endpoint.id, "message": "A test message. It worked!"},
        ),
        next_attempt_at=now,
        enqueued_at=now,
        created_at=now,
    )
    _enqueue_on_commit([delivery.id])
    return delivery


def _rearm(queryset, now: datetime, *, enqueued: bool = True) -> int:
    """Make deliveries due now with a fresh retry schedule; same webhook-id and body.
    Rows left un-`enqueued` are woken by the sweeper (it queues due rows with no message)."""
    return queryset.update(
        status=DeliveryStatus.PENDING,
        next_attempt_at=now,
        round_attempts=0,
        enqueued_at=now if enqueued else None,
        updated_at=now,
    )


@transaction.atomic
def delivery_replay(*, delivery: WebhookDelivery, now: datetime | None = None) -> WebhookDelivery:
    """Send a delivery again now (failed, delivered or still pending), with the same
    webhook-id and body and a fresh retry schedule."""
    if not delivery.endpoint.enabled:
        raise EndpointDisabled("The endpoint is disabled; enable it first.")
    now = now or timezone.now()
    _rearm(WebhookDelivery.objects.filter(pk=delivery.pk), now)
    _enqueue_on_commit([delivery.pk])
    delivery.refresh_from_db()
    return delivery


@transaction.atomic
def deliveries_replay_failed(
    *, endpoint: WebhookEndpoint, since: datetime, now: datetime | None = None
) -> int:
    """Replay every failed delivery of the endpoint created at or after `since`."""
    if not endpoint.enabled:
        raise EndpointDisabled("The endpoint is disabled; enable it first.")
    now = now or timezone.now()
    failed = WebhookDelivery.objects.filter(
        endpoint=endpoint, status=DeliveryStatus.FAILED, created_at__gte=since
    )
    first = list(failed.order_by("created_at").values_list("pk", flat=True)[:REPLAY_ENQUEUE_LIMIT])
    count = _rearm(failed, now, enqueued=False)
    WebhookDelivery.objects.filter(pk__in=first).update(enqueued_at=now)
    _enqueue_on_commit(first)
    return count
