"""Sending webhook deliveries: the job the worker runs, and the sweeper.

Entry points (dotted paths for `jobs`):

- `webhooks.delivery.deliver(delivery_id)`: make the delivery's next attempt if it is due and
  no other worker holds it. Safe to run twice, cheap to run for nothing. Tests pass `now=`.
- `webhooks.delivery.sweep()`: every 15 s, queue due pending deliveries whose wake-up message
  is missing: retries whose time has come, lost messages, attempts a killed worker left leased.

Outcome of an attempt:

- 2xx: delivered.
- 408, 425, 429, 5xx, 3xx (redirects are never followed), a time-out or a connection error:
  retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (each +-10% jitter), or after the
  answer's `Retry-After` (seconds or an HTTP date) when that is later, capped at 24 h; after
  the last one the delivery is `failed`.
- 410: failed, and the endpoint is disabled (the receiver says it is gone).
- any other 4xx: failed at once (the receiver refused this message; it would refuse it again).
- refused by the outbound guard (the host resolves to a private, loopback, link-local or
  metadata address, or the URL is no longer allowed): failed at once, not retried. DNS could
  change, but the usual cause (an internal host name) does not fix itself, and retrying on a
  schedule would keep probing internal addresses; fix the URL or DNS and replay. A name that
  does not resolve at all is a connection error (retried): DNS outages pass.

Every failed attempt continues the endpoint's failure streak; 5 days of failures with no
success disables the endpoint with that reason.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

import jobs
import netguard
from accounts.crypto import DecryptionError
from accounts.ids import new_object_id
from webhooks.models import AttemptOutcome, DeliveryStatus, WebhookAttempt, WebhookDelivery
from webhooks.services import (
    DELIVER,
    endpoint_disable,
    endpoint_record_failure,
    endpoint_record_success,
    endpoint_signing_secrets,
)
from webhooks.signing import signature_header

logger = logging.getLogger(__name__)

#: Waits before attempts 2, 3, ... (so 8 attempts in all, over about 33 hours).
SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
JITTER = 0.10
RETRY_AFTER_CAP = timedelta(hours=24)
RETRYABLE_STATUSES = frozenset({408, 425, 429})
#: An endpoint whose deliveries failed this long with no success is disabled.
AUTO_DISABLE_AFTER = timedelta(days=5)
#: How long a claimed attempt is a worker's own: longer than any attempt can take (the 10 s
#: request time-out plus the writes), short enough that a killed worker's attempt is soon retried.
LEASE = timedelta(seconds=30)
#: A due row whose message was queued longer ago than this has lost it: queue it again (a
#: duplicate message is harmless: the attempt is claimed with a conditional update).
REQUEUE_AFTER = timedelta(seconds=30)
SWEEP_BATCH = 500
RESPONSE_BODY_LIMIT = 1024
ERROR_LIMIT = 500
#: netguard's reason for a name with no address (the one refusal that is retried).
UNRESOLVED_REASON = "the host name does not resolve"
USER_AGENT = "VoiceWidgetPlatform-Webhooks/1.0 (+https://www.standardwebhooks.com/)"


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None = None
    latency_ms: int | None = None
    response_body: str = ""
    error: str = ""
    retry_after: timedelta | None = None
    refused: bool = False  # the outbound guard refused the address: nothing was sent


def retry_schedule() -> tuple[timedelta, ...]:
    """SCHEDULE, or the operator's `WEBHOOK_RETRY_SCHEDULE_SECONDS` (tests, trials)."""
    custom = getattr(settings, "WEBHOOK_RETRY_SCHEDULE_SECONDS", None)
    return tuple(timedelta(seconds=s) for s in custom) if custom else SCHEDULE


def retry_delay(
    step: int, retry_after: timedelta | None = None, *, rng: random.Random | None = None
) -> timedelta | None:
    """The wait after the `step`-th failed attempt (1-based) of a round, or None when the
    schedule is exhausted. Jittered +-10%; a later `Retry-After` wins, capped at 24 h."""
    schedule = retry_schedule()
    if step < 1 or step > len(schedule):
        return None
    factor = (rng or random).uniform(1 - JITTER, 1 + JITTER)
    delay = schedule[step - 1] * factor
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_AFTER_CAP))
    return delay


def parse_retry_after(value: str | None, *, now: datetime) -> timedelta | None:
    """`Retry-After` as a wait: delay-seconds or an HTTP date; None when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        # Huge numbers are capped by the caller; keep the arithmetic in range here.
        return timedelta(seconds=min(int(value), int(RETRY_AFTER_CAP.total_seconds()) + 1))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))


def _truncate(text: str, limit: int = ERROR_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _refusal(exc: BaseException) -> netguard.URLRefused | None:
    """The guard's refusal, raised directly or wrapped by httpx."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, netguard.URLRefused):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


_clients: dict[tuple, httpx.Client] = {}
_clients_lock = threading.Lock()


def _client(*, allow_http: bool, allow_private: bool, timeout: float) -> httpx.Client:
    """This process's guarded client (built once: a new one costs ~50 ms of TLS setup, which
    capped delivery at ~15 a second). The guard still resolves and checks every request."""
    key = (os.getpid(), allow_http, allow_private, timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = netguard.guarded_client(
                allow_http=allow_http, allow_private=allow_private, timeout=timeout
            )
            _clients[key] = client
        return client


def send_attempt(*, url: str, body: str, headers: dict[str, str], now: datetime) -> AttemptResult:
    """POST once through the outbound guard; never raises for network trouble."""
    allow_http = settings.WEBHOOK_ALLOW_HTTP
    allow_private = settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS
    timeout = settings.WEBHOOK_TIMEOUT_SECONDS
    try:
        netguard.check_url(url, allow_http=allow_http, allow_private=allow_private)
    except netguard.URLRefused as exc:
        return AttemptResult(error=_truncate(f"refused: {exc}"), refused=True)
    started = time.monotonic()
    try:
        client = _client(allow_http=allow_http, allow_private=allow_private, timeout=timeout)
        with client.stream("POST", url, content=body.encode(), headers=headers) as response:
            latency_ms = round((time.monotonic() - started) * 1000)
            head = b""
            for chunk in response.iter_bytes():
                head += chunk
                if len(head) >= RESPONSE_BODY_LIMIT:
                    break
            text = head[:RESPONSE_BODY_LIMIT].decode("utf-8", "replace")
            error = ""
            if response.is_redirect:
                location = response.headers.get("Location", "")
                error = _truncate(f"redirect to {location} (redirects are not followed)")
            return AttemptResult(
                status_code=response.status_code,
                latency_ms=latency_ms,
                response_body=text,
                error=error,
                retry_after=parse_retry_after(response.headers.get("Retry-After"), now=now),
            )
    except Exception as exc:  # network trouble of any kind is an attempt's result
        latency_ms = round((time.monotonic() - started) * 1000)
        refused = _refusal(exc)
        if refused is not None and refused.reason == UNRESOLVED_REASON:
            # A name that does not resolve (now) is a connection error: DNS outages pass.
            return AttemptResult(latency_ms=latency_ms, error=f"connection error: {refused}")
        if refused is not None:
            return AttemptResult(error=_truncate(f"refused: {refused}"), refused=True)
        if isinstance(exc, httpx.TimeoutException):
            error = f"timed out after {timeout} s ({type(exc).__name__})"
        elif isinstance(exc, httpx.HTTPError):
            error = f"connection error: {type(exc).__name__}: {exc}"
        else:
            logger.warning("unexpected error sending a webhook", exc_info=True)
            error = f"error: {type(exc).__name__}: {exc}"
        return AttemptResult(latency_ms=latency_ms, error=_truncate(error))


def classify(result: AttemptResult) -> tuple[str, bool]:
    """(outcome before the schedule is applied, whether to disable the endpoint)."""
    code = result.status_code
    if result.refused:
        return AttemptOutcome.FAILED, False
    if code is None:
        return AttemptOutcome.RETRY, False  # time-out or connection error
    if 200 <= code < 300:
        return AttemptOutcome.DELIVERED, False
    if code == 410:
        return AttemptOutcome.FAILED, True
    if code in RETRYABLE_STATUSES or code >= 500 or 300 <= code < 400:
        return AttemptOutcome.RETRY, False
    return AttemptOutcome.FAILED, False


def claim(delivery_id: str, *, now: datetime) -> str | None:
    """Take the delivery's next attempt if it is due and nobody holds it: a conditional
    update, so two workers never make the same attempt. Returns the lease token or None."""
    token = new_object_id()
    claimed = (
        WebhookDelivery.objects.filter(
            pk=delivery_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .update(
            lease_until=now + LEASE,
            lease_token=token,
            attempt_count=F("attempt_count") + 1,
            round_attempts=F("round_attempts") + 1,
        )
    )
    return token if claimed else None


def deliver(delivery_id: str, *, now: datetime | None = None) -> str:
    """Make the delivery's next attempt if it is due. Returns what happened: "delivered",
    "retry", "failed", or "skipped" (not due, already done, or held by another worker)."""
    now = now or timezone.now()
    token = claim(delivery_id, now=now)
    if token is None:
        return "skipped"
    delivery = WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first()
    if delivery is None:  # its endpoint was deleted a moment ago
        return "skipped"
    endpoint = delivery.endpoint
    if not endpoint.enabled:
        result = AttemptResult(
            error=_truncate(f"not sent: the endpoint is disabled ({endpoint.disabled_reason})")
        )
        return _finish(delivery, token, now, result, AttemptOutcome.FAILED, count_failure=False)

    timestamp = int(now.timestamp())
    try:
        signing_secrets = endpoint_signing_secrets(endpoint=endpoint, now=now)
    except DecryptionError as exc:
        # A configuration problem (FIELD_ENCRYPTION_KEY changed): retried on the schedule,
        # so fixing the key in time loses nothing.
        logger.error("webhook endpoint %s: %s", endpoint.pk, exc)
        result = AttemptResult(error=_truncate(f"not sent: {exc}"))
        return _finish(delivery, token, now, result, AttemptOutcome.RETRY, count_failure=False)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(
            secrets_=signing_secrets,
            msg_id=delivery.event_id,
            timestamp=timestamp,
            body=delivery.body,
        ),
    }
    result = send_attempt(url=endpoint.url, body=delivery.body, headers=headers, now=now)
    outcome, gone = classify(result)
    if gone:
        endpoint_disable(
            endpoint_id=endpoint.pk,
            reason="The receiver answered 410 Gone: it no longer wants these messages.",
            now=now,
        )
    return _finish(delivery, token, now, result, outcome, count_failure=True)


def _finish(
    delivery: WebhookDelivery,
    token: str,
    now: datetime,
    result: AttemptResult,
    outcome: str,
    *,
    count_failure: bool,
) -> str:
    next_attempt_at = None
    if outcome == AttemptOutcome.RETRY:
        delay = retry_delay(delivery.round_attempts, result.retry_after)
        if delay is None:
            outcome = AttemptOutcome.FAILED
        else:
            next_attempt_at = now + delay
    status = {
        AttemptOutcome.DELIVERED: DeliveryStatus.DELIVERED,
        AttemptOutcome.RETRY: DeliveryStatus.PENDING,
        AttemptOutcome.FAILED: DeliveryStatus.FAILED,
    }[AttemptOutcome(outcome)]
    error = result.error
    if not error and result.status_code is not None and status != DeliveryStatus.DELIVERED:
        error = f"HTTP {result.status_code}"
    try:
        recorded = _record(
            delivery, token, now, result, outcome, status, next_attempt_at, error, count_failure
        )
    except IntegrityError:  # deleted between the check and the commit
        recorded = False
    if not recorded:  # the endpoint (and so this delivery) was deleted mid-attempt
        logger.info("webhook delivery %s was deleted during its attempt", delivery.pk)
        return "skipped"
    logger.info(
        "webhook delivery %s (%s %s) attempt %d: %s%s",
        delivery.pk,
        delivery.event_type,
        delivery.event_id,
        delivery.attempt_count,
        outcome,
        f" ({error})" if error else "",
    )
    return str(outcome)


def _record(
    delivery: WebhookDelivery,
    token: str,
    now: datetime,
    result: AttemptResult,
    outcome: str,
    status: str,
    next_attempt_at: datetime | None,
    error: str,
    count_failure: bool,
) -> bool:
    with transaction.atomic():
        if not WebhookDelivery.objects.filter(pk=delivery.pk).exists():
            return False
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempt_count,
            attempted_at=now,
            status_code=result.status_code,
            latency_ms=result.latency_ms,
            response_body=result.response_body,
            error=error,
            outcome=outcome,
        )
        # Only the lease holder writes the outcome: a worker whose lease expired (and whose
        # attempt another worker has since repeated) only adds its attempt to the log.
        WebhookDelivery.objects.filter(pk=delivery.pk, lease_token=token).update(
            status=status,
            next_attempt_at=next_attempt_at,
            lease_until=None,
            lease_token="",
            last_status_code=result.status_code,
            last_error=error,
            delivered_at=now if status == DeliveryStatus.DELIVERED else None,
            updated_at=now,
        )
        if status == DeliveryStatus.DELIVERED:
            endpoint_record_success(endpoint_id=delivery.endpoint_id, now=now)
        elif count_failure:
            endpoint_record_failure(
                endpoint_id=delivery.endpoint_id, now=now, disable_after=AUTO_DISABLE_AFTER
            )
    return True


def sweep(*, now: datetime | None = None, limit: int = SWEEP_BATCH) -> list[str]:
    """Queue due pending deliveries that have no live wake-up message: never queued since
    they became due (retries), queued long ago (a lost message), or leased by a worker that
    died (the lease expired). Returns the ids queued."""
    now = now or timezone.now()
    due = (
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=now))
        .filter(
            Q(enqueued_at__isnull=True)
            | Q(enqueued_at__lt=F("next_attempt_at"))
            | Q(enqueued_at__lte=now - REQUEUE_AFTER)
        )
        .order_by("next_attempt_at")
    )
    ids = list(due.values_list("pk", flat=True)[:limit])
    if ids:
        WebhookDelivery.objects.filter(pk__in=ids).update(enqueued_at=now)
        for delivery_id in ids:
            jobs.enqueue(DELIVER, delivery_id)
    return ids
