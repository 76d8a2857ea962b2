from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api import StrictSerializerMixin
from accounts.fields import ObjectIdField, StrictCharField
from accounts.openapi import FlatEnvelopeSerializer
from calls.serializers import VariablesField
from telephony import twilio_client
from telephony.models import PhoneNumber, Provider, TwilioAccount
from telephony.validators import (
    ACCOUNT_SID_MESSAGE,
    ACCOUNT_SID_RE,
    AUTH_TOKEN_MESSAGE,
    E164_MESSAGE,
    E164_RE,
    is_account_sid,
    is_auth_token,
    is_e164,
)

VOICE_WEBHOOK_PATH = "/v1/telephony/twilio/voice"
STATUS_CALLBACK_PATH = "/v1/telephony/twilio/status"


@extend_schema_field({"type": "string", "pattern": E164_RE.pattern, "example": "+14155552671"})
class E164Field(StrictCharField):
    default_error_messages = {"e164": E164_MESSAGE}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 16)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not is_e164(value):
            self.fail("e164")
        return value


class ProviderField(serializers.ChoiceField):
    """A phone provider's name (a string: nothing is coerced)."""

    default_error_messages = {
        "invalid_choice": f"Unsupported provider; available: {', '.join(Provider.values)}."
    }

    def __init__(self, **kwargs):
        super().__init__(Provider.choices, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice")
        return super().to_internal_value(data)


# ------------------------------------------------------------------------------ accounts


@extend_schema_field({"type": "string", "pattern": ACCOUNT_SID_RE.pattern})
class AccountSidField(StrictCharField):
    default_error_messages = {"sid": ACCOUNT_SID_MESSAGE}

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not is_account_sid(value):
            self.fail("sid")
        return value


class AuthTokenField(StrictCharField):
    default_error_messages = {"token": AUTH_TOKEN_MESSAGE}

    def __init__(self, **kwargs):
        kwargs.setdefault("write_only", True)
        kwargs.setdefault("trim_whitespace", False)
        kwargs.setdefault("max_length", 128)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not is_auth_token(value):
            self.fail("token")
        return value


class TwilioAccountWriteSerializer(StrictSerializerMixin, serializers.Serializer):
    """Connect (all fields) or update (partial) a Twilio account. The auth token is written,
    never read back."""

    name = StrictCharField(max_length=100, help_text="A label for people.")
    account_sid = AccountSidField(help_text="The account's SID (Twilio console: Account Info).")
    auth_token = AuthTokenField(
        help_text="The account's auth token. Stored encrypted; never returned."
    )


class TwilioAccountSerializer(serializers.Serializer):
    """A Twilio account as the API shows it (never its auth token)."""

    id = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    account_sid = serializers.CharField(read_only=True)
    phone_numbers = serializers.SerializerMethodField(help_text="Ids of the account's numbers.")
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def get_phone_numbers(self, account: TwilioAccount) -> list[str]:
        return sorted(account.phone_numbers.values_list("pk", flat=True))


# ------------------------------------------------------------------------------ numbers


class PhoneNumberWriteSerializer(StrictSerializerMixin, serializers.Serializer):
    """Register (number, twilio_account_id and assistant_id required) or update (partial) a
    phone number held at Twilio."""

    number = E164Field(help_text="The number in E.164 format, as Twilio shows it.")
    name = StrictCharField(max_length=100, required=False, allow_blank=True)
    provider = ProviderField(required=False, help_text="`twilio` (the only provider so far).")
    twilio_account_id = ObjectIdField(help_text="The Twilio account that holds the number.")
    assistant_id = ObjectIdField(
        allow_null=True, help_text="The assistant that answers calls to it and places its calls."
    )


class PhoneNumberSerializer(serializers.Serializer):
    """A phone number (seed 000's phone purchase: its `id` is `phone_purchase_id`)."""

    id = serializers.CharField(read_only=True)
    number = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    provider = serializers.ChoiceField(choices=Provider.choices, read_only=True)
    twilio_account_id = serializers.CharField(read_only=True)
    assistant_id = serializers.CharField(read_only=True, allow_null=True)
    voice_webhook_url = serializers.SerializerMethodField(
        help_text="Set this as the number's voice webhook (HTTP POST) at Twilio."
    )
    status_callback_url = serializers.SerializerMethodField(
        help_text="Set this as the number's call status callback (HTTP POST) at Twilio."
    )
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def get_voice_webhook_url(self, number: PhoneNumber) -> str:
        return twilio_client.public_url(VOICE_WEBHOOK_PATH)

    def get_status_callback_url(self, number: PhoneNumber) -> str:
        return twilio_client.public_url(STATUS_CALLBACK_PATH)


# ------------------------------------------------------------------------------ calls


class InitiatePhoneCallSerializer(StrictSerializerMixin, serializers.Serializer):
    """Seed 000's InitiatePhoneCallDto, plus optional call variables."""

    phone_purchase_id = ObjectIdField(help_text="The id of the phone number to call from.")
    phoneNumber = E164Field(help_text="The number to call, in E.164 format.")  # noqa: N815
    provider = ProviderField()
    variables = VariablesField(required=False)


class InitiatePhoneCallResponseSerializer(FlatEnvelopeSerializer):
    """The answer to phone initiate: the new call's id beside `status`/`message` (like
    initiate); follow it with GET /v1/calls/{callId}, the call's events or webhooks."""

    callId = serializers.CharField()  # noqa: N815
