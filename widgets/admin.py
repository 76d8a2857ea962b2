from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.middleware.csrf import get_token

from accounts.admin_scoping import OrganizationScopedAdmin
from widgets.models import Widget, WidgetOrigin
from widgets.serializers import (
    APPEARANCE_FIELDS,
    COLOR_FIELDS,
    WidgetWriteSerializer,
    embed_snippet,
)
from widgets.validators import normalize_origin


class WidgetOriginForm(forms.ModelForm):
    class Meta:
        model = WidgetOrigin
        fields = ["origin", "position"]

    def clean_origin(self):
        return normalize_origin(self.cleaned_data["origin"])


class WidgetOriginInline(admin.TabularInline):
    model = WidgetOrigin
    form = WidgetOriginForm
    extra = 1
    verbose_name = "allowed origin"
    verbose_name_plural = "allowed origins (scheme://host[:port], exact)"


class WidgetForm(forms.ModelForm):
    class Meta:
        model = Widget
        fields = ["organization", "assistant", *APPEARANCE_FIELDS]
        widgets = {name: forms.TextInput(attrs={"type": "color"}) for name in COLOR_FIELDS}

    def clean(self):
        """The appearance fields go through the API's own serializer: the same rules, the same
        messages and the same normalisation (Windows line endings in the terms)."""
        cleaned = super().clean()
        data = {name: cleaned[name] for name in APPEARANCE_FIELDS if name in cleaned}
        serializer = WidgetWriteSerializer(data=data)
        if serializer.is_valid():
            cleaned.update(serializer.validated_data)
        else:
            for name, messages in serializer.errors.items():
                if name in self.fields:
                    self.add_error(name, ValidationError([str(m) for m in messages]))
        return cleaned


@admin.register(Widget)
class WidgetAdmin(OrganizationScopedAdmin, admin.ModelAdmin):
    form = WidgetForm
    change_form_template = "admin/widgets/widget/change_form.html"
    list_display = ["id", "call_to_action", "organization", "assistant", "created_at"]
    list_filter = ["organization"]
    inlines = [WidgetOriginInline]
    fieldsets = [
        (None, {"fields": ["organization", "assistant"]}),
        (
            "Colours",
            {
                "fields": [
                    ("background_color", "text_color"),
                    ("button_color", "button_text_color"),
                    ("border_color", "focus_outline_color"),
                ]
            },
        ),
        ("Shape", {"fields": [("card_radius", "button_radius")]}),
        ("Placement", {"fields": [("placement", "position")]}),
        ("Texts", {"fields": ["call_to_action", "start_call_button", "end_call_button"]}),
        ("Consent", {"fields": ["terms_and_condition", "terms_and_condition_content"]}),
    ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        base = f"{request.scheme}://{request.get_host()}"
        context["embed_snippet"] = embed_snippet(obj, base) if obj else ""
        # A saved widget's preview can start a real call: create-call accepts this server's
        # own origin with the staff session (CSRF-checked), see calls.views.WidgetCreateCallView.
        context["preview_call"] = (
            {"widgetId": obj.id, "csrfToken": get_token(request)} if obj else None
        )
        return super().render_change_form(request, context, add, change, form_url, obj)
