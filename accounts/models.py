from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.ids import new_object_id


class Scope(models.TextChoices):
    CALLS_READ = "calls:read"
    CALLS_WRITE = "calls:write"
    WIDGETS_READ = "widgets:read"
    WIDGETS_WRITE = "widgets:write"
    ASSISTANTS_READ = "assistants:read"
    ASSISTANTS_WRITE = "assistants:write"
    WEBHOOKS_READ = "webhooks:read"
    WEBHOOKS_WRITE = "webhooks:write"
    # Phone numbers and the phone provider accounts they belong to.
    PHONE_NUMBERS_READ = "phone_numbers:read"
    PHONE_NUMBERS_WRITE = "phone_numbers:write"


ALL_SCOPES: tuple[str, ...] = tuple(Scope.values)


class Organization(models.Model):
    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user belongs to one organization."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )

    def __str__(self) -> str:
        return f"{self.user} @ {self.organization}"


class APIKey(models.Model):
    """An organization's API key. Only a SHA-256 hash of the secret is stored."""

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])
