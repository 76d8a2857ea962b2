from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.api import OrgAPIView, ok, paginate
from accounts.errors import error_body
from assistants.models import Assistant
from assistants.serializers import AssistantListQuery, AssistantSerializer
from assistants.services import AssistantInUse, assistant_create, assistant_delete, assistant_update


class AssistantCollectionView(OrgAPIView):
    scopes = {"GET": "assistants:read", "POST": "assistants:write"}

    @extend_schema(
        operation_id="assistants_list",
        parameters=[AssistantListQuery],
        responses=AssistantSerializer(many=True),
    )
    def get(self, request):
        query = AssistantListQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        assistants = Assistant.objects.filter(organization=self.organization).prefetch_related(
            "knowledge"
        )
        if query.validated_data.get("enabled") is not None:
            assistants = assistants.filter(enabled=query.validated_data["enabled"])
        items, meta = paginate(assistants, query.validated_data)
        return ok("Assistants fetched", AssistantSerializer(items, many=True).data, meta=meta)

    @extend_schema(request=AssistantSerializer, responses={201: AssistantSerializer})
    def post(self, request):
        serializer = AssistantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        assistant = assistant_create(organization=self.organization, data=serializer.validated_data)
        return ok("Assistant created", AssistantSerializer(assistant).data, status=201)


class AssistantDetailView(OrgAPIView):
    scopes = {"GET": "assistants:read", "PATCH": "assistants:write", "DELETE": "assistants:write"}

    def get_object(self, assistant_id: str) -> Assistant:
        return get_object_or_404(Assistant, pk=assistant_id, organization=self.organization)

    @extend_schema(responses=AssistantSerializer)
    def get(self, request, assistant_id: str):
        return ok("Assistant fetched", AssistantSerializer(self.get_object(assistant_id)).data)

    @extend_schema(request=AssistantSerializer, responses=AssistantSerializer)
    def patch(self, request, assistant_id: str):
        assistant = self.get_object(assistant_id)
        serializer = AssistantSerializer(assistant, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        assistant = assistant_update(assistant=assistant, data=serializer.validated_data)
        return ok("Assistant updated", AssistantSerializer(assistant).data)

    @extend_schema(
        responses={
            200: OpenApiResponse(description="Assistant deleted; `data` is null"),
            409: OpenApiResponse(description="A call of this assistant is live"),
        }
    )
    def delete(self, request, assistant_id: str):
        assistant = self.get_object(assistant_id)
        try:
            assistant_delete(assistant=assistant)
        except AssistantInUse as exc:
            return Response(error_body(str(exc)), status=status.HTTP_409_CONFLICT)
        return ok("Assistant deleted", None)
