from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import ProtectedError

from accounts.admin_scoping import OrganizationScopedAdmin, user_organization
from accounts.crypto import encrypt
from telephony.models import PhoneNumber, TwilioAccount, TwilioCall
from telephony.serializers import STATUS_CALLBACK_PATH, VOICE_WEBHOOK_PATH
from telephony.twilio_client import public_url
from telephony.validators import AUTH_TOKEN_MESSAGE, is_auth_token


class TwilioAccountForm(forms.ModelForm):
    """The auth token is typed in (required when connecting, optional when editing: blank
    keeps the stored one) and never shown back, not even masked."""

    auth_token = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted and never shown. Leave blank to keep the stored token.",
    )

    class Meta:
        model = TwilioAccount
        fields = ["organization", "name", "account_sid"]

    def clean_auth_token(self):
        token = self.cleaned_data.get("auth_token", "")
        if not token and not self.instance.pk:
            raise forms.ValidationError("Required when connecting an account.")
        if token and not is_auth_token(token):
            raise forms.ValidationError(AUTH_TOKEN_MESSAGE)
        return token

    def save(self, commit=True):
        account = super().save(commit=False)
        if self.cleaned_data.get("auth_token"):
            account.auth_token_encrypted = encrypt(self.cleaned_data["auth_token"])
        if commit:
            account.save()
        return account


@admin.register(TwilioAccount)
class TwilioAccountAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    form = TwilioAccountForm
    list_display = ["name", "account_sid", "organization", "created_at"]
    list_filter = [("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["id", "name", "account_sid"]
    readonly_fields = ["id", "created_at", "updated_at"]
    fields = ["id", "organization", "name", "account_sid", "auth_token", "created_at", "updated_at"]

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        organization = user_organization(request.user)
        if organization is not None:
            initial.setdefault("organization", organization.pk)
        return initial

    def delete_model(self, request, obj):
        try:
            super().delete_model(request, obj)
        except ProtectedError:
            self.message_user(
                request, "Phone numbers use this account: delete them first.", messages.ERROR
            )


class PhoneNumberForm(forms.ModelForm):
    class Meta:
        model = PhoneNumber
        fields = ["organization", "number", "name", "provider", "twilio_account", "assistant"]

    def clean(self):
        cleaned = super().clean()
        organization = cleaned.get("organization")
        for name in ("twilio_account", "assistant"):
            related = cleaned.get(name)
            if organization and related and related.organization_id != organization.pk:
                self.add_error(name, "Must belong to the number's organization.")
        return cleaned


@admin.register(PhoneNumber)
class PhoneNumberAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    form = PhoneNumberForm
    list_display = ["number", "name", "provider", "assistant", "twilio_account", "organization"]
    list_filter = ["provider", ("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["id", "number", "name"]
    readonly_fields = ["id", "twilio_webhooks", "created_at", "updated_at"]
    fields = [
        "id",
        "organization",
        "number",
        "name",
        "provider",
        "twilio_account",
        "assistant",
        "twilio_webhooks",
        "created_at",
        "updated_at",
    ]

    @admin.display(description="Twilio configuration")
    def twilio_webhooks(self, obj: PhoneNumber) -> str:
        return (
            f"A call comes in: Webhook, HTTP POST {public_url(VOICE_WEBHOOK_PATH)} — "
            f"Call status changes: HTTP POST {public_url(STATUS_CALLBACK_PATH)}"
        )


@admin.register(TwilioCall)
class TwilioCallAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    organization_path = "call__organization"
    list_display = ["call", "direction", "phone_number", "last_provider_status", "created_at"]
    list_filter = ["direction", "last_provider_status"]
    search_fields = ["call__id", "call__provider_call_sid"]
    readonly_fields = [
        "call",
        "direction",
        "account",
        "phone_number",
        "placement_started_at",
        "last_provider_status",
        "error",
        "created_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
