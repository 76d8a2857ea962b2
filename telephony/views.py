"""The telephony REST API under /v1 (API-key views): Twilio accounts, phone numbers and
placing a phone call. Twilio's own requests (status callbacks, the voice webhook) are served
by `telephony.twilio_views`."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from accounts.api import OrgAPIView, PageQuery, ok, paginate, request_object
from accounts.errors import error_body
from assistants.models import Assistant
from telephony.models import PhoneNumber, TwilioAccount
from telephony.selectors import phone_numbers_for, twilio_accounts_for
from telephony.serializers import (
    InitiatePhoneCallResponseSerializer,
    InitiatePhoneCallSerializer,
    PhoneNumberSerializer,
    PhoneNumberWriteSerializer,
    TwilioAccountSerializer,
    TwilioAccountWriteSerializer,
)
from telephony.services import (
    AccountInUse,
    TelephonyError,
    phone_call_initiate,
    phone_number_create,
    phone_number_delete,
    phone_number_update,
    twilio_account_create,
    twilio_account_delete,
    twilio_account_update,
)

READ, WRITE = "phone_numbers:read", "phone_numbers:write"


def refused(exc: TelephonyError) -> Response:
    errors = {exc.field: [str(exc)]} if exc.field else None
    return Response(error_body(str(exc), errors), status=status.HTTP_400_BAD_REQUEST)


# ------------------------------------------------------------------------------ accounts


class TwilioAccountCollectionView(OrgAPIView):
    scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(
        summary="List connected Twilio accounts",
        operation_id="twilio_accounts_list",
        parameters=[PageQuery],
        responses=OpenApiResponse(
            TwilioAccountSerializer(many=True), description="Twilio accounts fetched"
        ),
    )
    def get(self, request):
        accounts = twilio_accounts_for(organization=self.organization).prefetch_related(
            "phone_numbers"
        )
        items, meta = paginate(accounts, request.query_params)
        return ok(
            "Twilio accounts fetched", TwilioAccountSerializer(items, many=True).data, meta=meta
        )

    @extend_schema(
        summary="Connect a Twilio account (its auth token is stored encrypted, never returned)",
        request=TwilioAccountWriteSerializer,
        responses={201: OpenApiResponse(TwilioAccountSerializer, description="Account connected")},
    )
    def post(self, request):
        serializer = TwilioAccountWriteSerializer(data=request_object(request))
        serializer.is_valid(raise_exception=True)
        try:
            account = twilio_account_create(
                organization=self.organization, **serializer.validated_data
            )
        except TelephonyError as exc:
            return refused(exc)
        return ok("Twilio account connected", TwilioAccountSerializer(account).data, status=201)


class TwilioAccountDetailView(OrgAPIView):
    scopes = {"GET": READ, "PATCH": WRITE, "DELETE": WRITE}

    def get_account(self, account_id: str) -> TwilioAccount:
        return get_object_or_404(twilio_accounts_for(organization=self.organization), pk=account_id)

    @extend_schema(
        summary="Read a Twilio account (never its auth token)",
        responses=OpenApiResponse(TwilioAccountSerializer, description="Twilio account fetched"),
    )
    def get(self, request, account_id: str):
        account = self.get_account(account_id)
        return ok("Twilio account fetched", TwilioAccountSerializer(account).data)

    @extend_schema(
        summary="Rename a Twilio account or replace its auth token",
        request=TwilioAccountWriteSerializer,
        responses=OpenApiResponse(TwilioAccountSerializer, description="Twilio account updated"),
    )
    def patch(self, request, account_id: str):
        account = self.get_account(account_id)
        serializer = TwilioAccountWriteSerializer(data=request_object(request), partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            account = twilio_account_update(account=account, data=serializer.validated_data)
        except TelephonyError as exc:
            return refused(exc)
        return ok("Twilio account updated", TwilioAccountSerializer(account).data)

    @extend_schema(
        summary="Disconnect a Twilio account (only once no phone number uses it)",
        responses={
            200: OpenApiResponse(description="Twilio account deleted"),
            409: OpenApiResponse(description="Phone numbers still use this account"),
        },
    )
    def delete(self, request, account_id: str):
        try:
            twilio_account_delete(account=self.get_account(account_id))
        except AccountInUse as exc:
            return Response(error_body(str(exc)), status=status.HTTP_409_CONFLICT)
        return ok("Twilio account deleted", None)


# ------------------------------------------------------------------------------ numbers


def _related(organization, data: dict) -> dict:
    """Validated write data with the related objects looked up in the organization: an id
    that is not the organization's is a 404, like every other object of another one."""
    data = dict(data)
    if "twilio_account_id" in data:
        account = TwilioAccount.objects.filter(
            pk=data.pop("twilio_account_id"), organization=organization
        ).first()
        if account is None:
            raise NotFound("Twilio account not found.")
        data["twilio_account"] = account
    if "assistant_id" in data:
        assistant_id = data.pop("assistant_id")
        assistant = None
        if assistant_id is not None:
            assistant = Assistant.objects.filter(pk=assistant_id, organization=organization).first()
            if assistant is None:
                raise NotFound("Assistant not found.")
        data["assistant"] = assistant
    return data


RELATED_NOT_FOUND = OpenApiResponse(
    description="No such object in your organization (also: the Twilio account or assistant "
    "named in the body)"
)


class PhoneNumberCollectionView(OrgAPIView):
    scopes = {"GET": READ, "POST": WRITE}

    @extend_schema(
        summary="List phone numbers",
        operation_id="phone_numbers_list",
        parameters=[PageQuery],
        responses=OpenApiResponse(
            PhoneNumberSerializer(many=True), description="Phone numbers fetched"
        ),
    )
    def get(self, request):
        items, meta = paginate(
            phone_numbers_for(organization=self.organization), request.query_params
        )
        return ok("Phone numbers fetched", PhoneNumberSerializer(items, many=True).data, meta=meta)

    @extend_schema(
        summary="Register a phone number held at Twilio (a phone purchase)",
        request=PhoneNumberWriteSerializer,
        responses={
            201: OpenApiResponse(PhoneNumberSerializer, description="Phone number added"),
            404: RELATED_NOT_FOUND,
        },
    )
    def post(self, request):
        serializer = PhoneNumberWriteSerializer(data=request_object(request))
        serializer.is_valid(raise_exception=True)
        data = _related(self.organization, serializer.validated_data)
        try:
            number = phone_number_create(organization=self.organization, **data)
        except TelephonyError as exc:
            return refused(exc)
        return ok("Phone number added", PhoneNumberSerializer(number).data, status=201)


class PhoneNumberDetailView(OrgAPIView):
    scopes = {"GET": READ, "PATCH": WRITE, "DELETE": WRITE}

    def get_number(self, phone_number_id: str) -> PhoneNumber:
        return get_object_or_404(
            phone_numbers_for(organization=self.organization), pk=phone_number_id
        )

    @extend_schema(
        summary="Read a phone number",
        responses=OpenApiResponse(PhoneNumberSerializer, description="Phone number fetched"),
    )
    def get(self, request, phone_number_id: str):
        return ok(
            "Phone number fetched", PhoneNumberSerializer(self.get_number(phone_number_id)).data
        )

    @extend_schema(
        summary="Update a phone number (its assistant, account, label or number)",
        request=PhoneNumberWriteSerializer,
        responses={
            200: OpenApiResponse(PhoneNumberSerializer, description="Phone number updated"),
            404: RELATED_NOT_FOUND,
        },
    )
    def patch(self, request, phone_number_id: str):
        number = self.get_number(phone_number_id)
        serializer = PhoneNumberWriteSerializer(data=request_object(request), partial=True)
        serializer.is_valid(raise_exception=True)
        data = _related(self.organization, serializer.validated_data)
        try:
            number = phone_number_update(phone_number=number, data=data)
        except TelephonyError as exc:
            return refused(exc)
        return ok("Phone number updated", PhoneNumberSerializer(number).data)

    @extend_schema(
        summary="Remove a phone number (its past calls are kept)",
        responses=OpenApiResponse(description="Phone number deleted"),
    )
    def delete(self, request, phone_number_id: str):
        phone_number_delete(phone_number=self.get_number(phone_number_id))
        return ok("Phone number deleted", None)


# ------------------------------------------------------------------------------ calls


class PhoneCallInitiateView(OrgAPIView):
    scopes = {"POST": "calls:write"}

    @extend_schema(
        summary="Start an outbound phone call",
        request=InitiatePhoneCallSerializer,
        responses={
            201: OpenApiResponse(
                InitiatePhoneCallResponseSerializer,
                description="Call initiated: queued, then placed at the provider",
            ),
            404: OpenApiResponse(description="Phone purchase not found in your organization"),
        },
    )
    def post(self, request):
        serializer = InitiatePhoneCallSerializer(data=request_object(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        phone_number = (
            PhoneNumber.objects.select_related("assistant", "twilio_account")
            .filter(pk=data["phone_purchase_id"], organization=self.organization)
            .first()
        )
        if phone_number is None:
            raise NotFound("Phone purchase not found.")
        if phone_number.provider != data["provider"]:
            raise ValidationError(
                {"provider": [f"This phone number's provider is {phone_number.provider}."]}
            )
        try:
            call = phone_call_initiate(
                organization=self.organization,
                phone_number=phone_number,
                to_number=data["phoneNumber"],
                variables=data.get("variables"),
            )
        except TelephonyError as exc:
            return refused(exc)
        body = {"status": True, "message": "Call initiated", "callId": call.id}
        return Response(InitiatePhoneCallResponseSerializer(body).data, status=201)
