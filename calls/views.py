from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.admin_scoping import user_organization
from accounts.api import OrgAPIView, ok, paginate
from accounts.authentication import APIKeyAuthentication, StaffSessionAuthentication
from accounts.errors import error_body
from accounts.openapi import NO_BODY, SERVER_BUSY
from accounts.permissions import HasScope
from assistants.models import Assistant
from calls.capacity import ensure_room
from calls.control import CallAlreadyEnded, ControlAction, call_request_stop
from calls.gateway import gateway_for, live_socket_info
from calls.live import session_token_issue
from calls.ranges import recording_response
from calls.selectors import call_list, calls_for, transcript_status
from calls.serializers import (
    CallAnalysisSerializer,
    CallDetailSerializer,
    CallListQuery,
    CallLiveSerializer,
    CallSerializer,
    CallTranscriptsSerializer,
    CallTurnsSerializer,
    CreateWidgetCallSerializer,
    InitiateCallResponseSerializer,
    InitiateCallSerializer,
    WidgetCallResponseSerializer,
)
from calls.services import CallNotAllowed, call_create
from widgets.models import Widget
from widgets.origins import origin_allowed, own_origin


def not_allowed_response(exc: CallNotAllowed) -> Response:
    errors = {exc.field: [str(exc)]} if exc.field else None
    return Response(error_body(str(exc), errors), status=status.HTTP_400_BAD_REQUEST)


class CallCollectionView(OrgAPIView):
    scopes = {"GET": "calls:read"}

    @extend_schema(
        summary="List calls",
        operation_id="calls_list",
        parameters=[CallListQuery],
        responses=OpenApiResponse(CallSerializer(many=True), description="Calls fetched"),
    )
    def get(self, request):
        query = CallListQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        calls = call_list(organization=self.organization, filters=query.validated_data)
        items, meta = paginate(calls, query.validated_data)
        return ok("Calls fetched", CallSerializer(items, many=True).data, meta=meta)


class CallInitiateView(OrgAPIView):
    scopes = {"POST": "calls:write"}

    @extend_schema(
        summary="Start a web call",
        request=InitiateCallSerializer,
        responses={
            201: OpenApiResponse(
                InitiateCallResponseSerializer, description="Call initiated; connect to gateway.url"
            ),
            404: OpenApiResponse(description="No assistant with this id in your organization"),
            503: SERVER_BUSY,
        },
    )
    def post(self, request):
        ensure_room()  # 503 + Retry-After while this process carries MAX_CONCURRENT_CALLS
        serializer = InitiateCallSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        assistant = get_object_or_404(
            Assistant, pk=data["assistantId"], organization=self.organization
        )
        try:
            call, token = call_create(
                organization=self.organization,
                assistant=assistant,
                variables=data.get("variables"),
            )
        except CallNotAllowed as exc:
            return not_allowed_response(exc)
        body = {
            "status": True,
            "message": "Call initiated with location data",
            "callId": call.id,
            "gateway": gateway_for(request=request, call=call, token=token),
        }
        return Response(InitiateCallResponseSerializer(body).data, status=201)


class WidgetCreateCallView(APIView):
    """create-call: from a browser on an allowed origin (no key), or server to server with a key.

    The admin's live preview, on this server's own origin, is authorised by the signed-in staff
    user's session instead (CSRF-checked): see `preview_allowed`."""

    authentication_classes = [APIKeyAuthentication, StaffSessionAuthentication]
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "widget_call"
    scopes = {"POST": "widgets:write"}

    @extend_schema(
        summary="Create a widget call",
        # An API key, or none (a browser on an allowed origin). The staff session is the admin
        # preview's own way in, not part of the public API.
        auth=[{"ApiKeyHeader": []}, {"BearerKey": []}, {}],
        request=CreateWidgetCallSerializer,
        responses={
            201: OpenApiResponse(
                WidgetCallResponseSerializer, description="Call created; connect to gateway.url"
            ),
            401: OpenApiResponse(
                description="Neither an API key nor an Origin, or an unknown or revoked key"
            ),
            403: OpenApiResponse(
                description="The key lacks `widgets:write`, or the widget does not allow the origin"
            ),
            404: OpenApiResponse(description="No widget with this id (in the key's organization)"),
            503: SERVER_BUSY,
        },
    )
    def post(self, request):
        ensure_room()  # 503 + Retry-After while this process carries MAX_CONCURRENT_CALLS
        serializer = CreateWidgetCallSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        widget = (
            Widget.objects.select_related("assistant", "organization")
            .filter(pk=data["widget_id"])
            .first()
        )
        origin = ""
        consent = None
        if request.auth is not None:  # an API key
            HasScope().has_permission(request, self)
            if widget is None or widget.organization_id != request.auth.organization_id:
                raise exceptions.NotFound("Widget not found.")
        else:
            origin = request.headers.get("Origin", "")
            if not origin:
                raise exceptions.NotAuthenticated(
                    "Send an API key, or call from a web page whose origin the widget allows."
                )
            if widget is None:
                raise exceptions.NotFound("Widget not found.")
            if not (
                origin_allowed(widget=widget, origin=origin)
                or self.preview_allowed(request, widget, origin)
            ):
                raise exceptions.PermissionDenied(
                    f"Calls from {origin} are not allowed for this widget (see its allowed_origins)."
                )
            consent = self.consent_record(widget, data.get("consent"), origin)
        try:
            call, token = call_create(
                organization=widget.organization,
                assistant=widget.assistant,
                widget=widget,
                origin=origin.lower(),
                consent=consent,
                variables=data.get("variables"),
            )
        except CallNotAllowed as exc:
            return not_allowed_response(exc)
        body = {
            "status": True,
            "message": "Call created",
            "call_id": call.id,
            "assistant_id": call.assistant_id,
            "gateway": gateway_for(request=request, call=call, token=token),
        }
        return Response(WidgetCallResponseSerializer(body).data, status=201)

    @staticmethod
    def preview_allowed(request, widget: Widget, origin: str) -> bool:
        """The admin's live preview: a page of this server's own origin, with the session of a
        staff user (StaffSessionAuthentication) of the widget's organization (superusers: any).
        The call records that origin; the call socket then accepts it from there only."""
        user = request.user
        if not getattr(user, "is_staff", False) or origin.lower() != own_origin(request):
            return False
        if user.is_superuser:
            return True
        organization = user_organization(user)
        return organization is not None and organization.pk == widget.organization_id

    @staticmethod
    def consent_record(widget: Widget, consent: dict | None, origin: str) -> dict | None:
        if not widget.terms_and_condition:
            return None
        if not consent or not consent.get("accepted"):
            raise exceptions.ValidationError(
                {"consent": ["The widget's terms must be accepted before the call starts."]}
            )
        if consent.get("terms_sha256") not in (None, widget.terms_sha256):
            raise exceptions.ValidationError(
                {"consent": ["The terms have changed since they were shown; reload the widget."]}
            )
        return {
            "accepted_at": timezone.now().isoformat(),
            "origin": origin.lower(),
            "terms_sha256": widget.terms_sha256,
        }


class CallDetailBase(OrgAPIView):
    scopes = {"GET": "calls:read"}

    def get_call(self, call_id: str):
        return get_object_or_404(calls_for(organization=self.organization), pk=call_id)


class CallDetailView(CallDetailBase):
    @extend_schema(
        summary="Read a call",
        responses=OpenApiResponse(CallDetailSerializer, description="Call fetched"),
    )
    def get(self, request, call_id: str):
        return ok("Call fetched", CallDetailSerializer(self.get_call(call_id)).data)


class CallTranscriptsView(CallDetailBase):
    @extend_schema(
        summary="Read a call's transcript",
        responses=OpenApiResponse(CallTranscriptsSerializer, description="Transcripts fetched"),
    )
    def get(self, request, call_id: str):
        call = self.get_call(call_id)
        entries = list(call.transcript.all())
        data = {
            "call_id": call.id,
            "transcript_status": transcript_status(call, len(entries)),
            "transcripts": entries,
        }
        return ok("Transcripts fetched", CallTranscriptsSerializer(data).data)


class CallAnalysisView(CallDetailBase):
    @extend_schema(
        summary="Read a call's analysis",
        responses=OpenApiResponse(CallAnalysisSerializer, description="Analysis fetched"),
    )
    def get(self, request, call_id: str):
        call = self.get_call(call_id)
        analysis = call.analysis or {}
        data = {
            "call_id": call.id,
            "analysis_status": call.analysis_status,
            "summary": analysis.get("summary"),
            "outcome": analysis.get("outcome"),
            "extracted_data": analysis.get("extracted_data", {}),
            "error": call.analysis_error or None,
        }
        return ok("Analysis fetched", CallAnalysisSerializer(data).data)


class CallTurnsView(CallDetailBase):
    @extend_schema(
        summary="Read a call's per-turn timings",
        responses=OpenApiResponse(CallTurnsSerializer, description="Turns fetched"),
    )
    def get(self, request, call_id: str):
        """Each turn's latencies in milliseconds, as the voice engine measured them."""
        call = self.get_call(call_id)
        data = {"call_id": call.id, "turns": list(call.turns.all())}
        return ok("Turns fetched", CallTurnsSerializer(data).data)


class CallRecordingView(CallDetailBase):
    """The two-channel WAV (user left, assistant right), with HTTP range support."""

    @extend_schema(
        summary="Download a call's recording (WAV, range requests supported)",
        parameters=[
            OpenApiParameter(
                "Range",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="One byte range, e.g. `bytes=0-1023` (RFC 9110).",
            )
        ],
        responses={
            (200, "audio/wav"): OpenApiResponse(OpenApiTypes.BINARY, description="The recording"),
            (206, "audio/wav"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The requested range (see `Content-Range`)"
            ),
            404: OpenApiResponse(description="No such call, or it has no recording (yet)"),
            416: OpenApiResponse(NO_BODY, description="The range is outside the recording"),
        },
    )
    def get(self, request, call_id: str):
        call = self.get_call(call_id)
        if not call.recording:
            raise exceptions.NotFound("This call has no recording (yet).")
        try:
            return recording_response(
                call.recording, request.headers.get("Range", ""), f"call-{call.id}.wav"
            )
        except OSError as exc:
            raise exceptions.NotFound("The recording file is missing.") from exc


class CallLiveView(CallDetailBase):
    @extend_schema(
        summary="Connect to a call's live transcript socket",
        responses=OpenApiResponse(
            CallLiveSerializer,
            description="How to connect; `temp_token` is shown in this answer only",
        ),
    )
    def get(self, request, call_id: str):
        """The live transcript socket of this call (`ws(s)://HOST/ws/calls/{id}`) and a
        temporary `session_token` for it: single-use, for this call only, redeemable for
        5 minutes (only its SHA-256 is stored). The socket also takes `?api_key=KEY`."""
        call = self.get_call(call_id)
        token, expires_at = session_token_issue(call=call)
        data = {
            **live_socket_info(request=request, call=call),
            "call_id": call.id,
            "temp_token": token,
            "expires_at": expires_at,
        }
        response = ok("Live connection info", CallLiveSerializer(data).data)
        response["Cache-Control"] = "no-store"  # it carries a credential
        return response


CALL_STOP_RESPONSES = {
    202: OpenApiResponse(
        CallSerializer,
        description="Accepted: the process running the call ends it (asynchronously); "
        "`data` is the call as it is now (read it again, or follow `call.ended`).",
    ),
    200: OpenApiResponse(
        CallSerializer,
        description="Ended here: nobody had connected to the call yet (a queued call), so it "
        "ended at once, `failed` with `canceled`.",
    ),
    409: OpenApiResponse(description="The call has already ended (the message names its status)"),
}


class CallStopView(CallDetailBase):
    scopes = {"POST": "calls:write"}
    action = ControlAction.CANCEL
    accepted_message = ""

    def post(self, request, call_id: str):
        call = self.get_call(call_id)
        try:
            ended_here = call_request_stop(call=call, action=self.action)
        except CallAlreadyEnded as exc:
            return Response(error_body(str(exc)), status=status.HTTP_409_CONFLICT)
        if ended_here:
            call.refresh_from_db()
            return ok("Call canceled", CallSerializer(call).data)
        return ok(self.accepted_message, CallSerializer(call).data, status=202)


class CallEndView(CallStopView):
    action = ControlAction.END
    accepted_message = "Call ending"

    @extend_schema(summary="End a live call", request=None, responses=CALL_STOP_RESPONSES)
    def post(self, request, call_id: str):
        """End a live call gracefully: the assistant says its goodbye line, then the call ends
        `completed` with `api_end` (202). A queued call nobody has connected to yet is
        canceled at once (200, `failed` / `canceled`)."""
        return super().post(request, call_id)


class CallCancelView(CallStopView):
    action = ControlAction.CANCEL
    accepted_message = "Call canceling"

    @extend_schema(summary="Cancel a live call", request=None, responses=CALL_STOP_RESPONSES)
    def post(self, request, call_id: str):
        """Stop a live call at once: it ends `failed` with `canceled` (202; a queued call
        nobody has connected to yet: at once, 200)."""
        return super().post(request, call_id)
