from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from accounts.admin_scoping import OrganizationScopedAdmin
from calls.admin_views import dashboard, event_timeline, transcript_lines, waterfall
from calls.models import Call
from calls.ranges import recording_response


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
    search_fields = ["id", "transcript__text", "provider_call_sid", "from_number", "to_number"]
    date_hierarchy = "created_at"
    # The console (player, transcript, waterfall, analysis, events with their webhook
    # deliveries) replaces the raw inlines.
    change_form_template = "admin/calls/call/change_form.html"
    change_list_template = "admin/calls/call/change_list.html"
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
        "from_number",
        "to_number",
        "provider_call_sid",
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

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("dashboard/", view(self.dashboard_view), name="calls_call_dashboard"),
            path(
                "<str:call_id>/recording/",
                view(self.recording_view),
                name="calls_call_recording",
            ),
            *super().get_urls(),
        ]

    def scoped_call(self, request, call_id: str) -> Call:
        """The call if this user may view it; another organization's call is a 404."""
        if not self.has_view_permission(request):
            raise Http404
        call = self.get_queryset(request).filter(pk=call_id).first()
        if call is None:
            raise Http404("No such call.")
        return call

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The admin's default for an object outside the queryset is a redirect to the index;
        # another organization's call is a plain 404 here, like its recording.
        self.scoped_call(request, unquote(object_id))
        return super().change_view(request, object_id, form_url, extra_context)

    def recording_view(self, request, call_id: str):
        call = self.scoped_call(request, call_id)
        if not call.recording:
            raise Http404("This call has no recording (yet).")
        try:
            return recording_response(
                call.recording, request.headers.get("Range", ""), f"call-{call.id}.wav"
            )
        except OSError as exc:
            raise Http404("The recording file is missing.") from exc

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["console"] = {
                "recording_url": (
                    reverse("admin:calls_call_recording", args=[obj.pk]) if obj.recording else ""
                ),
                "transcript": transcript_lines(obj),
                "waterfall": waterfall(list(obj.turns.order_by("index"))),
                "analysis": obj.analysis if isinstance(obj.analysis, dict) else {},
                "events": event_timeline(obj),
            }
        return super().render_change_form(request, context, add, change, form_url, obj)

    def dashboard_view(self, request):
        if not self.has_view_permission(request):
            raise Http404
        context = {
            **self.admin_site.each_context(request),
            "title": "Calls dashboard",
            "opts": self.model._meta,
            "stats": dashboard(self.get_queryset(request)),
        }
        return TemplateResponse(request, "admin/calls/call/dashboard.html", context)
