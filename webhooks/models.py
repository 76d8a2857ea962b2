from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.ids import new_object_id
from accounts.models import Organization
from webhooks.catalog import ALL_EVENTS


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"  # waiting for its next attempt (or in one)
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # gave up: schedule exhausted, a final 4xx, refused, endpoint disabled


class AttemptOutcome(models.TextChoices):
    DELIVERED = "delivered"
    RETRY = "retry"  # failed; another attempt is scheduled
    FAILED = "failed"  # failed; no further attempt


class WebhookEndpoint(models.Model):
    """Where an organization wants its events POSTed, signed with the endpoint's secret."""

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="webhook_endpoints"
    )
    # Checked by netguard (scheme, host, no credentials) on every write and again at send time.
    url = models.CharField(max_length=2000)
    description = models.CharField(max_length=500, blank=True)
    # Subscribed event types; ["*"] is every type (also future ones).
    events = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Fernet tokens (accounts.crypto); the clear secret is shown once and never stored.
    secret_encrypted = models.TextField(editable=False)
    # After a rotation the old secret keeps signing (a second signature) until it expires.
    previous_secret_encrypted = models.TextField(blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    secret_rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    # First failed attempt since the last success: 5 days of that disables the endpoint.
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "webhook endpoint"

    def __str__(self) -> str:
        return f"{self.url} ({'enabled' if self.enabled else 'disabled'})"

    def subscribes_to(self, event_type: str) -> bool:
        events = self.events or [ALL_EVENTS]
        return ALL_EVENTS in events or event_type in events


class WebhookDelivery(models.Model):
    """One event for one endpoint. The row is the truth about what is left to send: the
    queue only wakes a worker, and the sweeper finds due rows whose message was lost."""

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    # The `webhook-id` header: the event's id, the same on every attempt and replay.
    event_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=64)
    # Exactly the bytes signed and sent, fixed at creation so every attempt sends the same.
    body = models.TextField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempt_count = models.PositiveIntegerField(default=0)
    # Attempts since the delivery was created or last replayed: the step in the schedule.
    round_attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set when a worker claims an attempt; a worker killed mid-attempt leaves it to expire.
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=24, blank=True)
    # When a wake-up message was last queued (the sweeper re-queues lost ones).
    enqueued_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "event_id"], name="unique_webhook_delivery_per_event"
            )
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_due")]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} -> {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    """One HTTP attempt of a delivery, as the delivery log shows it."""

    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)  # the first 1 KB
    error = models.CharField(max_length=500, blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices)

    class Meta:
        ordering = ["number", "id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}: {self.outcome}"
