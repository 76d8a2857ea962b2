from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from accounts.admin_scoping import OrganizationScopedAdmin
from webhooks.catalog import ALL_EVENTS, EVENT_TYPES
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from webhooks.services import (
    EndpointDisabled,
    InvalidEventTypes,
    InvalidWebhookURL,
    delivery_replay,
    endpoint_send_test,
    endpoint_update,
    events_normalize,
    webhook_url_check,
)


class WebhookEndpointForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=[(ALL_EVENTS, "all events")] + [(t, t) for t in EVENT_TYPES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="None or “all events” subscribes to every type.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "events", "enabled"]

    def clean_url(self):
        try:
            return webhook_url_check(self.cleaned_data["url"].strip())
        except InvalidWebhookURL as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_events(self):
        try:
            return events_normalize(self.cleaned_data["events"])
        except InvalidEventTypes as exc:
            raise forms.ValidationError(str(exc)) from exc


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    """Endpoints are created over the API, which shows the signing secret once; here they
    can be read, edited, enabled or disabled. The secret is never shown."""

    form = WebhookEndpointForm
    list_display = [
        "url",
        "organization",
        "enabled",
        "disabled_reason",
        "failing_since",
        "last_success_at",
        "created_at",
    ]
    list_filter = ["enabled", ("organization", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["id", "url", "description"]
    readonly_fields = [
        "id",
        "organization",
        "signing_secret",
        "disabled_reason",
        "disabled_at",
        "failing_since",
        "last_success_at",
        "secret_rotated_at",
        "created_at",
        "updated_at",
        "deliveries",
    ]
    fieldsets = [
        (None, {"fields": ["id", "organization", "url", "description", "events"]}),
        ("State", {"fields": ["enabled", "disabled_reason", "disabled_at", "failing_since"]}),
        (
            "Signing and log",
            {"fields": ["signing_secret", "secret_rotated_at", "last_success_at", "deliveries"]},
        ),
        ("Dates", {"fields": ["created_at", "updated_at"]}),
    ]
    actions = ["send_test"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="signing secret")
    def signing_secret(self, obj: WebhookEndpoint) -> str:
        return "hidden: shown once over the API when created or rotated"

    @admin.display(description="deliveries")
    def deliveries(self, obj: WebhookEndpoint):
        url = reverse("admin:webhooks_webhookdelivery_changelist")
        query = urlencode({"endpoint__id__exact": obj.pk})
        return format_html('<a href="{}?{}">Delivery log</a>', url, query)

    def save_model(self, request, obj, form, change):
        # Through the service, from the stored row: enabling clears the disabled reason.
        current = WebhookEndpoint.objects.get(pk=obj.pk)
        data = {name: form.cleaned_data[name] for name in form.changed_data}
        updated = endpoint_update(endpoint=current, data=data)
        obj.__dict__.update(
            {f.attname: getattr(updated, f.attname) for f in WebhookEndpoint._meta.concrete_fields}
        )

    @admin.action(description="Send a test (ping) message")
    def send_test(self, request, queryset):
        sent = 0
        for endpoint in queryset:
            try:
                endpoint_send_test(endpoint=endpoint)
                sent += 1
            except EndpointDisabled:
                continue
        self.message_user(request, f"Queued {sent} test message(s).", messages.SUCCESS)


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = [
        "number",
        "attempted_at",
        "outcome",
        "status_code",
        "latency_ms",
        "error",
        "response_body",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    list_display = [
        "id",
        "event_type",
        "event_id",
        "endpoint",
        "status",
        "attempt_count",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    ]
    # Only the endpoints this user may see (the scoped queryset's), never all of them.
    list_filter = ["status", "event_type", ("endpoint", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["id", "event_id"]
    date_hierarchy = "created_at"
    inlines = [WebhookAttemptInline]
    readonly_fields = [
        "id",
        "organization",
        "endpoint",
        "event_id",
        "event_type",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "created_at",
        "body",
    ]
    fields = readonly_fields
    actions = ["replay"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("endpoint")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_replay_permission(self, request) -> bool:
        # Replaying sends again: it needs change rights, though the rows are read-only here.
        return request.user.has_perm("webhooks.change_webhookdelivery")

    @admin.action(description="Replay selected deliveries now", permissions=["replay"])
    def replay(self, request, queryset):
        replayed = 0
        for delivery in queryset:
            try:
                delivery_replay(delivery=delivery)
                replayed += 1
            except EndpointDisabled:
                continue
        self.message_user(request, f"Queued {replayed} replay(s).", messages.SUCCESS)
