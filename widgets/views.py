from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.cache import patch_cache_control, patch_vary_headers
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import OrgAPIView, ok, paginate
from widgets.models import Widget
from widgets.origins import origin_allowed, own_origin
from widgets.serializers import WidgetWriteSerializer, widget_public_config, widget_representation
from widgets.services import widget_create, widget_delete, widget_update


def base_url(request) -> str:
    return f"{request.scheme}://{request.get_host()}"


def widgets_for(organization):
    return Widget.objects.filter(organization=organization).prefetch_related("allowed_origins")


class WidgetCollectionView(OrgAPIView):
    scopes = {"GET": "widgets:read", "POST": "widgets:write"}

    @extend_schema(
        summary="List widgets",
        operation_id="widgets_list",
        responses=OpenApiResponse(description="Widgets fetched"),
    )
    def get(self, request):
        items, meta = paginate(widgets_for(self.organization), request.query_params)
        data = [widget_representation(w, embed_base=base_url(request)) for w in items]
        return ok("Widgets fetched", data, meta=meta)

    @extend_schema(
        summary="Create a widget (no body needed: good defaults)",
        request=WidgetWriteSerializer,
        responses={201: OpenApiResponse(description="Widget created")},
    )
    def post(self, request):
        serializer = WidgetWriteSerializer(data=request.data or {}, organization=self.organization)
        serializer.is_valid(raise_exception=True)
        widget = widget_create(organization=self.organization, data=serializer.validated_data)
        return ok(
            "Widget created",
            widget_representation(widget, embed_base=base_url(request)),
            status=201,
        )


class WidgetDetailView(OrgAPIView):
    scopes = {"GET": "widgets:read", "PATCH": "widgets:write", "DELETE": "widgets:write"}

    def get_object(self, widget_id: str) -> Widget:
        return get_object_or_404(widgets_for(self.organization), pk=widget_id)

    @extend_schema(summary="Read a widget", responses=OpenApiResponse(description="Widget fetched"))
    def get(self, request, widget_id: str):
        widget = self.get_object(widget_id)
        return ok("Widget fetched", widget_representation(widget, embed_base=base_url(request)))

    @extend_schema(
        summary="Update a widget",
        request=WidgetWriteSerializer,
        responses=OpenApiResponse(description="Widget updated"),
    )
    def patch(self, request, widget_id: str):
        widget = self.get_object(widget_id)
        serializer = WidgetWriteSerializer(data=request.data, organization=self.organization)
        serializer.is_valid(raise_exception=True)
        widget = widget_update(widget=widget, data=serializer.validated_data)
        return ok("Widget updated", widget_representation(widget, embed_base=base_url(request)))

    @extend_schema(
        summary="Delete a widget", responses=OpenApiResponse(description="Widget deleted")
    )
    def delete(self, request, widget_id: str):
        widget_delete(widget=self.get_object(widget_id))
        return ok("Widget deleted", None)


class WidgetPublicConfigView(APIView):
    """What the embed script renders. Public and cacheable; tells whether this origin may call."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Public widget configuration (for the embed script)",
        auth=[],
        responses=OpenApiResponse(description="Appearance, texts and whether this origin may call"),
    )
    def get(self, request, widget_id: str):
        widget = get_object_or_404(Widget.objects.select_related("assistant"), pk=widget_id)
        origin = request.headers.get("Origin")
        allowed = (
            origin_allowed(widget=widget, origin=origin, own=own_origin(request))
            if origin
            else True
        )
        response = Response(widget_public_config(widget, origin_allowed=allowed))
        patch_cache_control(response, public=True, max_age=60)
        patch_vary_headers(response, ["Origin"])
        return response
