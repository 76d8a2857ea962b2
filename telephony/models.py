from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

from accounts.ids import new_object_id
from accounts.models import Organization
from assistants.models import Assistant
from calls.models import Call
from telephony.validators import ACCOUNT_SID_MESSAGE, ACCOUNT_SID_RE, E164_MESSAGE, E164_RE


class Provider(models.TextChoices):
    TWILIO = "twilio"


class Direction(models.TextChoices):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class TwilioAccount(models.Model):
    """An organization's Twilio account: the SDK places and ends calls with it, and its auth
    token checks the signatures of Twilio's requests. The token is stored encrypted
    (accounts.crypto) and never shown again: not by the API, not in the admin."""

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="twilio_accounts"
    )
    name = models.CharField(max_length=100)
    account_sid = models.CharField(
        max_length=34, validators=[RegexValidator(ACCOUNT_SID_RE, ACCOUNT_SID_MESSAGE)]
    )
    auth_token_encrypted = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "Twilio account"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "account_sid"], name="unique_twilio_account_per_org"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.account_sid})"


class PhoneNumber(models.Model):
    """A phone number the organization holds at a provider (seed 000's "phone purchase"):
    outbound calls are placed from it, and calls to it are answered by its assistant."""

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="phone_numbers"
    )
    number = models.CharField(
        max_length=16, unique=True, validators=[RegexValidator(E164_RE, E164_MESSAGE)]
    )
    name = models.CharField(max_length=100, blank=True)
    provider = models.CharField(max_length=16, choices=Provider.choices, default=Provider.TWILIO)
    # A number's account cannot be deleted while the number exists (its calls need the token).
    twilio_account = models.ForeignKey(
        TwilioAccount, on_delete=models.PROTECT, related_name="phone_numbers"
    )
    # Who answers; a number without one rejects inbound calls and cannot place calls.
    assistant = models.ForeignKey(
        Assistant, null=True, blank=True, on_delete=models.SET_NULL, related_name="phone_numbers"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "phone number"

    def __str__(self) -> str:
        return f"{self.number} ({self.provider})"


class TwilioCall(models.Model):
    """Which Twilio account and number a phone call went through: its callbacks, its media
    stream's signature and its hang-up use that account's token."""

    call = models.OneToOneField(
        Call, primary_key=True, on_delete=models.CASCADE, related_name="twilio"
    )
    direction = models.CharField(max_length=16, choices=Direction.choices)
    account = models.ForeignKey(
        TwilioAccount, null=True, on_delete=models.SET_NULL, related_name="calls"
    )
    phone_number = models.ForeignKey(
        PhoneNumber, null=True, on_delete=models.SET_NULL, related_name="calls"
    )
    # Set when a worker starts creating the call at Twilio: a second run of the job (a
    # re-delivered message) never dials twice.
    placement_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The last Twilio CallStatus received (as Twilio spells it), for the admin.
    last_provider_status = models.CharField(max_length=16, blank=True)
    # Why placing the call failed (Twilio's answer, or the network error), when it did.
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "Twilio call"

    def __str__(self) -> str:
        return f"{self.direction} Twilio call {self.call_id}"
