from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from accounts.api import OrgAPIView, PageQuery, ok, paginate
from accounts.errors import error_body
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.selectors import delivery_list, endpoints_for
from webhooks.serializers import (
    DeliveryListQuery,
    ReplayCountSerializer,
    ReplayFailedSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointSerializer,
    WebhookEndpointWithSecretSerializer,
    WebhookEndpointWriteSerializer,
    delivery_representation,
    endpoint_representation,
)
from webhooks.services import (
    EndpointDisabled,
    deliveries_replay_failed,
    delivery_replay,
    endpoint_create,
    endpoint_delete,
    endpoint_rotate_secret,
    endpoint_send_test,
    endpoint_update,
)

READ, WRITE = "webhooks:read", "webhooks:write"
DISABLED = OpenApiResponse(description="The endpoint is disabled: enable it first")


def disabled_response(exc: EndpointDisabled) -> Response:
    return Response(error_body(str(exc)), status=status.HTTP_409_CONFLICT)


class WebhookCollectionView(OrgAPIView):
    scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(
        summary="List webhook endpoints",
        operation_id="webhooks_list",
        parameters=[PageQuery],
        responses=OpenApiResponse(
            WebhookEndpointSerializer(many=True), description="Webhook endpoints fetched"
        ),
    )
    def get(self, request):
        items, meta = paginate(endpoints_for(organization=self.organization), request.query_params)
        return ok("Webhooks fetched", [endpoint_representation(e) for e in items], meta=meta)

    @extend_schema(
        summary="Create a webhook endpoint (the answer shows its signing secret, once)",
        request=WebhookEndpointWriteSerializer,
        responses={
            201: OpenApiResponse(
                WebhookEndpointWithSecretSerializer,
                description="Webhook created; `secret` is shown once",
            )
        },
    )
    def post(self, request):
        serializer = WebhookEndpointWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = endpoint_create(
            organization=self.organization, **serializer.validated_data
        )
        return ok("Webhook created", endpoint_representation(endpoint, secret=secret), status=201)


class WebhookObjectView(OrgAPIView):
    def get_endpoint(self, webhook_id: str) -> WebhookEndpoint:
        return get_object_or_404(endpoints_for(organization=self.organization), pk=webhook_id)


class WebhookDetailView(WebhookObjectView):
    scopes = {"GET": READ, "PATCH": WRITE, "DELETE": WRITE}

    @extend_schema(
        summary="Read a webhook endpoint (never its secret)",
        responses=OpenApiResponse(WebhookEndpointSerializer, description="Webhook fetched"),
    )
    def get(self, request, webhook_id: str):
        return ok("Webhook fetched", endpoint_representation(self.get_endpoint(webhook_id)))

    @extend_schema(
        summary="Update a webhook endpoint (enabling it clears its disabled reason)",
        request=WebhookEndpointWriteSerializer,
        responses=OpenApiResponse(WebhookEndpointSerializer, description="Webhook updated"),
    )
    def patch(self, request, webhook_id: str):
        endpoint = self.get_endpoint(webhook_id)
        serializer = WebhookEndpointWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = endpoint_update(endpoint=endpoint, data=serializer.validated_data)
        return ok("Webhook updated", endpoint_representation(endpoint))

    @extend_schema(
        summary="Delete a webhook endpoint and its delivery log",
        responses=OpenApiResponse(description="Webhook deleted"),
    )
    def delete(self, request, webhook_id: str):
        endpoint_delete(endpoint=self.get_endpoint(webhook_id))
        return ok("Webhook deleted", None)


class WebhookRotateSecretView(WebhookObjectView):
    scopes = {"POST": WRITE}

    @extend_schema(
        summary="Rotate the signing secret (the old one also signs for 24 hours)",
        request=None,
        responses=OpenApiResponse(
            WebhookEndpointWithSecretSerializer,
            description="Secret rotated; the new `secret` is shown once",
        ),
    )
    def post(self, request, webhook_id: str):
        endpoint = self.get_endpoint(webhook_id)
        secret = endpoint_rotate_secret(endpoint=endpoint)
        return ok("Webhook secret rotated", endpoint_representation(endpoint, secret=secret))


class WebhookTestView(WebhookObjectView):
    scopes = {"POST": WRITE}

    @extend_schema(
        summary="Send a `ping` message to the endpoint",
        request=None,
        responses={
            202: OpenApiResponse(
                WebhookDeliverySerializer, description="Test message queued (see its delivery)"
            ),
            409: DISABLED,
        },
    )
    def post(self, request, webhook_id: str):
        try:
            delivery = endpoint_send_test(endpoint=self.get_endpoint(webhook_id))
        except EndpointDisabled as exc:
            return disabled_response(exc)
        return ok("Test message queued", delivery_representation(delivery), status=202)


class WebhookDeliveriesView(WebhookObjectView):
    scopes = {"GET": READ}

    @extend_schema(
        summary="The endpoint's delivery log (newest first), with every attempt",
        operation_id="webhooks_deliveries_list",
        parameters=[DeliveryListQuery],
        responses=OpenApiResponse(
            WebhookDeliverySerializer(many=True), description="Deliveries fetched"
        ),
    )
    def get(self, request, webhook_id: str):
        endpoint = self.get_endpoint(webhook_id)
        query = DeliveryListQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        deliveries = delivery_list(endpoint=endpoint, filters=query.validated_data)
        items, meta = paginate(deliveries, query.validated_data)
        return ok("Deliveries fetched", [delivery_representation(d) for d in items], meta=meta)


class WebhookDeliveryReplayView(WebhookObjectView):
    scopes = {"POST": WRITE}

    @extend_schema(
        summary="Send a delivery again now (same webhook-id and body, fresh retry schedule)",
        request=None,
        responses={
            202: OpenApiResponse(WebhookDeliverySerializer, description="Replay queued"),
            409: DISABLED,
        },
    )
    def post(self, request, webhook_id: str, delivery_id: str):
        endpoint = self.get_endpoint(webhook_id)
        delivery = get_object_or_404(
            WebhookDelivery.objects.select_related("endpoint"), pk=delivery_id, endpoint=endpoint
        )
        try:
            delivery = delivery_replay(delivery=delivery)
        except EndpointDisabled as exc:
            return disabled_response(exc)
        return ok("Delivery replay queued", delivery_representation(delivery), status=202)


class WebhookReplayFailedView(WebhookObjectView):
    scopes = {"POST": WRITE}

    @extend_schema(
        summary="Replay every failed delivery created since a date-time",
        request=ReplayFailedSerializer,
        responses={
            202: OpenApiResponse(ReplayCountSerializer, description="Replays queued"),
            409: DISABLED,
        },
    )
    def post(self, request, webhook_id: str):
        endpoint = self.get_endpoint(webhook_id)
        serializer = ReplayFailedSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            count = deliveries_replay_failed(
                endpoint=endpoint, since=serializer.validated_data["since"]
            )
        except EndpointDisabled as exc:
            return disabled_response(exc)
        return ok("Failed deliveries replay queued", {"replayed": count}, status=202)
