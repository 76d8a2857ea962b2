from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.cache import patch_cache_control, patch_vary_headers
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import OrgAPIView, PageQuery, ok, paginate, request_object
from widgets.models import Widget
from widgets.origins import origin_allowed
from widgets.serializers import (
    WidgetPublicConfigSerializer,
    WidgetSerializer,
    WidgetWriteSerializer,
)
from widgets.services import widget_create, widget_delete, widget_update


def base_url(request) -> str:
    return f"{request.scheme}://{request.get_host()}"


def embed_context(request) -> dict:
    """What WidgetSerializer needs: the base URL the embed snippet loads the script from."""
    return {"embed_base": base_url(request)}


def widgets_for(organization):
    return Widget.objects.filter(organization=organization).prefetch_related("allowed_origins")


class WidgetCollectionView(OrgAPIView):
    scopes = {"GET": "widgets:read", "POST": "widgets:write"}

    @extend_schema(
        summary="List widgets",
        operation_id="widgets_list",
        parameters=[PageQuery],
        responses=OpenApiResponse(WidgetSerializer(many=True), description="Widgets fetched"),
    )
    def get(self, request):
        items, meta = paginate(widgets_for(self.organization), request.query_params)
        data = WidgetSerializer(items, many=True, context=embed_context(request)).data
        return ok("Widgets fetched", data, meta=meta)

    @extend_schema(
        summary="Create a widget (no body needed: good defaults)",
        request=WidgetWriteSerializer,
        responses={201: OpenApiResponse(WidgetSerializer, description="Widget created")},
    )
    def post(self, request):
        # An empty body creates a widget with defaults (seed 001); a non-object body is a 400.
        serializer = WidgetWriteSerializer(
            data=request_object(request), organization=self.organization
        )
        serializer.is_valid(raise_exception=True)
        widget = widget_create(organization=self.organization, data=serializer.validated_data)
        data = WidgetSerializer(widget, context=embed_context(request)).data
        return ok("Widget created", data, status=201)


class WidgetDetailView(OrgAPIView):
    scopes = {"GET": "widgets:read", "PATCH": "widgets:write", "DELETE": "widgets:write"}

    def get_object(self, widget_id: str) -> Widget:
        return get_object_or_404(widgets_for(self.organization), pk=widget_id)

    @extend_schema(
        summary="Read a widget",
        responses=OpenApiResponse(WidgetSerializer, description="Widget fetched"),
    )
    def get(self, request, widget_id: str):
        widget = self.get_object(widget_id)
        return ok("Widget fetched", WidgetSerializer(widget, context=embed_context(request)).data)

    @extend_schema(
        summary="Update a widget",
        request=WidgetWriteSerializer,
        responses=OpenApiResponse(WidgetSerializer, description="Widget updated"),
    )
    def patch(self, request, widget_id: str):
        widget = self.get_object(widget_id)
        serializer = WidgetWriteSerializer(
            data=request_object(request), organization=self.organization
        )
        serializer.is_valid(raise_exception=True)
        widget = widget_update(widget=widget, data=serializer.validated_data)
        return ok("Widget updated", WidgetSerializer(widget, context=embed_context(request)).data)

    @extend_schema(
        summary="Delete a widget",
        responses=OpenApiResponse(description="Widget deleted; `data` is null"),
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
        responses=OpenApiResponse(
            WidgetPublicConfigSerializer,
            description="Appearance, texts and whether this origin may call (no envelope)",
        ),
    )
    def get(self, request, widget_id: str):
        widget = get_object_or_404(Widget.objects.select_related("assistant"), pk=widget_id)
        origin = request.headers.get("Origin")
        allowed = origin_allowed(widget=widget, origin=origin) if origin else True
        config = WidgetPublicConfigSerializer(widget, context={"origin_allowed": allowed})
        response = Response(config.data)
        patch_cache_control(response, public=True, max_age=60)
        patch_vary_headers(response, ["Origin"])
        return response
