from __future__ import annotations

from django.contrib import admin

from accounts.admin_scoping import OrganizationScopedAdmin
from calls.models import Call, CallEvent, CallTurn, TranscriptEntry


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class TranscriptInline(ReadOnlyInline):
    model = TranscriptEntry
    fields = ["seq", "role", "text", "start_ms", "end_ms", "interrupted"]
    readonly_fields = fields


class TurnInline(ReadOnlyInline):
    model = CallTurn
    fields = ["index", "timings"]
    readonly_fields = fields


class EventInline(ReadOnlyInline):
    """The call's event timeline (what webhooks and live subscribers were sent)."""

    model = CallEvent
    fields = ["seq", "type", "created_at", "id", "payload"]
    readonly_fields = fields
    ordering = ["seq"]


@admin.register(Call)
class CallAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    list_display = [
        "id",
        "type",
        "status",
        "end_reason",
        "assistant",
        "widget",
        "created_at",
        "duration_seconds",
    ]
    list_filter = ["status", "type", "transport", "organization"]
    search_fields = ["id", "transcript__text"]
    date_hierarchy = "created_at"
    inlines = [TranscriptInline, TurnInline, EventInline]
    readonly_fields = [
        "id",
        "organization",
        "assistant",
        "widget",
        "type",
        "status",
        "end_reason",
        "transport",
        "origin",
        "consent",
        "variables",
        "connected_at",
        "started_at",
        "ended_at",
        "duration_seconds",
        "recording",
        "analysis_status",
        "analysis",
        "analysis_error",
        "created_at",
        "updated_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
