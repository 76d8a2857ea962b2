from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api import MAX_OFFSET, StrictSerializerMixin
from accounts.fields import (
    ObjectIdField,
    OptionalCharField,
    OptionalChoiceField,
    StrictCharField,
    StrictDictField,
)
from accounts.ids import OBJECT_ID_RE, is_object_id
from accounts.openapi import FlatEnvelopeSerializer
from calls.models import (
    ANALYSIS_STATUSES,
    STATUS_CODES,
    Call,
    CallStatus,
    CallTurn,
    CallType,
    TranscriptEntry,
)
from calls.protocol import AudioPath
from calls.services import recording_url
from calls.vocabulary import EndReason

STATUS_BY_CODE = {str(code): status.value for status, code in STATUS_CODES.items()}
# (seed 000's number, status name), for the API's numeric `status` (and its schema's enum).
STATUS_CODE_CHOICES = sorted((code, status.value) for status, code in STATUS_CODES.items())
MAX_VARIABLES = 50


class VariablesField(StrictDictField):
    """Call variables for `{{name}}` substitution: a small flat object of strings."""

    child = serializers.CharField(max_length=1000, allow_blank=True)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) > MAX_VARIABLES:
            raise serializers.ValidationError(f"At most {MAX_VARIABLES} variables.")
        bad = [k for k in value if not k.replace("_", "").isalnum() or len(k) > 64]
        if bad:
            raise serializers.ValidationError(f"Invalid variable name(s): {', '.join(bad)}")
        return value


@extend_schema_field({"type": "string", "enum": CallType.values})
class CallTypeField(StrictCharField):
    """A call type: any string is read (seed 000 names phone types too), only `web` is served."""


class InitiateCallSerializer(StrictSerializerMixin, serializers.Serializer):
    """Seed 000's InitiateCallDto, plus optional call variables."""

    assistantId = ObjectIdField()  # noqa: N815
    type = CallTypeField(max_length=16)
    variables = VariablesField(required=False)

    def validate_type(self, value):
        if value != CallType.WEB:
            raise serializers.ValidationError(
                "Unsupported call type; only 'web' is available here "
                "(phone calls: POST /v1/calls/phone/initiate)."
            )
        return value


class ConsentSerializer(StrictSerializerMixin, serializers.Serializer):
    accepted = serializers.BooleanField()
    terms_sha256 = StrictCharField(max_length=64, required=False)


class CreateWidgetCallSerializer(StrictSerializerMixin, serializers.Serializer):
    """Seed 001's CreateConnectionDTO, plus the visitor's consent and call variables."""

    widget_id = ObjectIdField()
    consent = ConsentSerializer(required=False)
    variables = VariablesField(required=False)


@extend_schema_field(OpenApiTypes.DATETIME)
class FlexibleDateTimeField(serializers.Field):
    """An ISO datetime, or a date (the start of the day, or its end with `end_of_day`)."""

    def __init__(self, *, end_of_day: bool = False, **kwargs):
        self.end_of_day = end_of_day
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = None
        if isinstance(data, str):
            try:
                # A bare date first: Python 3.11's fromisoformat (used by parse_datetime)
                # would read "2026-03-03" as midnight and lose `end_of_day`.
                day = parse_date(data)
                if day is not None:
                    time = dt.time.max if self.end_of_day else dt.time.min
                    value = dt.datetime.combine(day, time)
                else:
                    value = parse_datetime(data)
            except ValueError:  # well formed but impossible, e.g. month 13
                value = None
        if value is None:
            raise serializers.ValidationError("Must be an ISO 8601 date or datetime.")
        if timezone.is_naive(value):
            value = timezone.make_aware(value, dt.UTC)
        try:
            # In UTC, as stored: an offset can push a date out of datetime's range
            # (0001-01-01T00:00:00+23:59 is in year 0), which is an OverflowError.
            return value.astimezone(dt.UTC)
        except (OverflowError, ValueError) as exc:
            raise serializers.ValidationError(
                "Out of range: must be between 0001-01-01 and 9999-12-31 in UTC."
            ) from exc


@extend_schema_field(
    {"type": "string", "enum": [*CallStatus.values, *sorted(STATUS_BY_CODE)]},
)
class CallStatusQueryField(serializers.CharField):
    """A status by name or by seed 000's number."""


@extend_schema_field({"type": "string", "pattern": OBJECT_ID_RE.pattern})
class IdQueryField(serializers.CharField):
    """An id (checked by the serializer's validate_<name>, whose message names the object)."""


class CallListQuery(StrictSerializerMixin, serializers.Serializer):
    status = CallStatusQueryField(required=False)
    type = serializers.ChoiceField(choices=CallType.choices, required=False)
    assistant = IdQueryField(required=False)
    widget = IdQueryField(required=False)
    created_after = FlexibleDateTimeField(required=False)
    created_before = FlexibleDateTimeField(required=False, end_of_day=True)
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, required=False)

    def validate_status(self, value):
        value = STATUS_BY_CODE.get(value, value)
        if value not in CallStatus.values:
            known = ", ".join(f"{s} ({STATUS_CODES[CallStatus(s)]})" for s in CallStatus.values)
            raise serializers.ValidationError(f"Unknown status; use one of: {known}.")
        return value

    def validate_assistant(self, value):
        if not is_object_id(value):
            raise serializers.ValidationError("Must be an assistant id.")
        return value

    def validate_widget(self, value):
        if not is_object_id(value):
            raise serializers.ValidationError("Must be a widget id.")
        return value

    def validate(self, attrs):
        after, before = attrs.get("created_after"), attrs.get("created_before")
        if after and before and after > before:
            raise serializers.ValidationError(
                {"created_after": ["Must not be after created_before."]}
            )
        return attrs


class ConsentRecordSerializer(serializers.Serializer):
    """What the visitor accepted before a widget call (widgets that show terms)."""

    accepted_at = serializers.DateTimeField()
    origin = serializers.CharField()
    terms_sha256 = serializers.CharField()


class CallSerializer(serializers.ModelSerializer):
    """A call as the API shows it: seed 000's call, plus how and where it ran."""

    status = serializers.ChoiceField(
        choices=STATUS_CODE_CHOICES,
        source="status_code",
        read_only=True,
        help_text="Seed 000's number for `status_label`.",
    )
    status_label = serializers.ChoiceField(
        choices=CallStatus.choices, source="status", read_only=True
    )
    assistant_id = serializers.CharField(allow_null=True, read_only=True)
    widget_id = serializers.CharField(allow_null=True, read_only=True)
    transport = OptionalChoiceField([path.value for path in AudioPath])
    end_reason = OptionalChoiceField([reason.value for reason in EndReason])
    origin = OptionalCharField(help_text="The page origin of a widget call.")
    from_number = OptionalCharField(help_text="A phone call's calling number (E.164).")
    to_number = OptionalCharField(help_text="A phone call's called number (E.164).")
    provider_call_sid = OptionalCharField(
        help_text="A phone call's id at its provider (Twilio's CallSid)."
    )
    variables = serializers.DictField(child=serializers.CharField(), read_only=True)
    consent = serializers.SerializerMethodField()
    duration = serializers.FloatField(
        source="duration_seconds", allow_null=True, read_only=True, help_text="Seconds."
    )
    recording_url = serializers.SerializerMethodField()
    analysis_status = serializers.ChoiceField(choices=ANALYSIS_STATUSES, read_only=True)
    outcome = serializers.SerializerMethodField(help_text="The analysis' outcome label.")
    summary = serializers.SerializerMethodField(help_text="The analysis' summary.")

    class Meta:
        model = Call
        fields = [
            "id",
            "type",
            "status",
            "status_label",
            "assistant_id",
            "widget_id",
            "transport",
            "end_reason",
            "origin",
            "from_number",
            "to_number",
            "provider_call_sid",
            "variables",
            "consent",
            "created_at",
            "started_at",
            "ended_at",
            "duration",
            "recording_url",
            "analysis_status",
            "outcome",
            "summary",
        ]
        read_only_fields = ["id", "type", "created_at", "started_at", "ended_at"]

    @extend_schema_field(ConsentRecordSerializer(allow_null=True))
    def get_consent(self, call: Call):
        return call.consent  # as recorded

    def get_recording_url(self, call: Call) -> str | None:
        return recording_url(call)

    def get_outcome(self, call: Call) -> str | None:
        return (call.analysis or {}).get("outcome")

    def get_summary(self, call: Call) -> str | None:
        return (call.analysis or {}).get("summary")


class CallDetailSerializer(CallSerializer):
    """One call: the list's fields plus its transcript as text."""

    transcript = serializers.SerializerMethodField(
        help_text="`role: text` lines (the entries: GET /v1/calls/{id}/transcripts)."
    )

    class Meta(CallSerializer.Meta):
        fields = [*CallSerializer.Meta.fields, "transcript"]

    def get_transcript(self, call: Call) -> str:
        return "\n".join(f"{e.role}: {e.text}" for e in call.transcript.all())


class TranscriptEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = TranscriptEntry
        fields = ["role", "text", "start_ms", "end_ms", "interrupted", "source", "created_at"]
        read_only_fields = fields


# calls.selectors.transcript_status
TRANSCRIPT_STATUSES = ("pending", "in_progress", "ready", "empty")


class CallTranscriptsSerializer(serializers.Serializer):
    call_id = serializers.CharField()
    transcript_status = serializers.ChoiceField(choices=TRANSCRIPT_STATUSES)
    transcripts = TranscriptEntrySerializer(many=True)


class CallAnalysisSerializer(serializers.Serializer):
    """Seed 000's analysis, filled after the call ends (see `calls.analysis`)."""

    call_id = serializers.CharField()
    analysis_status = serializers.ChoiceField(choices=ANALYSIS_STATUSES)
    summary = serializers.CharField(allow_null=True)
    outcome = serializers.CharField(allow_null=True)
    extracted_data = serializers.DictField(
        help_text="One value per field of the assistant's analysis plan (null: not found)."
    )
    error = serializers.CharField(
        allow_null=True, help_text="Why the analysis failed, or why it was skipped."
    )


def _timing(help_text: str) -> serializers.IntegerField:
    return serializers.IntegerField(allow_null=True, read_only=True, help_text=help_text)


class CallTurnSerializer(serializers.Serializer):
    """One turn's timings as the voice engine reported them (`voice.events.TurnTimings`):
    wall-clock milliseconds measured from the end of the caller's speech, null where that
    stage did not happen (no reply, no interruption)."""

    index = serializers.IntegerField(read_only=True, help_text="The turn's number in the call.")
    speech_end_ms = _timing("End of the caller's speech, in call time (ms since the call began).")
    endpoint_silence_ms = _timing("The silence the endpoint decision waited for (setting).")
    endpoint_ms = _timing("End of speech -> the turn was judged finished (endpoint decision).")
    transcript_ms = _timing("End of speech -> the transcript was ready.")
    first_text_ms = _timing("End of speech -> the first reply text.")
    first_audio_ms = _timing("End of speech -> the first reply audio was sent.")
    interruption_stop_ms = _timing(
        "The caller's barge-in onset -> the assistant's audio stopped (interrupted turns)."
    )
    created_at = serializers.DateTimeField(read_only=True)

    TIMINGS = (
        "speech_end_ms",
        "endpoint_silence_ms",
        "endpoint_ms",
        "transcript_ms",
        "first_text_ms",
        "first_audio_ms",
        "interruption_stop_ms",
    )

    def to_representation(self, turn: CallTurn):
        stored = turn.timings if isinstance(turn.timings, dict) else {}

        def number(value):
            # Stored JSON as the engine sent it; anything not a number reads as "not measured".
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            return int(round(value))

        return {
            "index": turn.index,
            **{name: number(stored.get(name)) for name in self.TIMINGS},
            "created_at": serializers.DateTimeField().to_representation(turn.created_at),
        }


class CallTurnsSerializer(serializers.Serializer):
    call_id = serializers.CharField()
    turns = CallTurnSerializer(many=True)


class GatewaySerializer(serializers.Serializer):
    """Where the client connects next: the call socket, with the call's single-use token."""

    transport = serializers.ChoiceField(choices=("websocket",))
    path = serializers.CharField()
    url = serializers.CharField()


class InitiateCallResponseSerializer(FlatEnvelopeSerializer):
    """Seed 000's answer to initiate: the call's id and gateway beside `status`/`message`."""

    callId = serializers.CharField()  # noqa: N815
    gateway = GatewaySerializer()


class WidgetCallResponseSerializer(FlatEnvelopeSerializer):
    """Seed 001's answer to create-call: the call's ids and gateway beside `status`/`message`."""

    call_id = serializers.CharField()
    assistant_id = serializers.CharField()
    gateway = GatewaySerializer()


# --- The live transcript socket (GET /v1/calls/{id}/live) ---


class LiveConnectionInfoSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="The socket's URL, `ws(s)://HOST/ws/calls/{id}`.")
    auth_method = serializers.CharField(help_text="`query_param`.")
    auth_param = serializers.CharField(help_text="`api_key`: a key with `calls:read`.")
    temp_auth_param = serializers.CharField(help_text="`session_token`: the `temp_token`.")
    subprotocol_auth = serializers.CharField(
        help_text="The `temp_token` may instead be sent as the `Sec-WebSocket-Protocol` value "
        "(a browser's `new WebSocket(url, [token])`); the server echoes it on accept."
    )
    example = serializers.CharField()
    example_session = serializers.CharField()
    message_format = serializers.CharField(help_text="`json`.")
    message_types = serializers.ListField(child=serializers.CharField())
    close_codes = serializers.DictField(
        child=serializers.CharField(), help_text="What each close code means."
    )


class CallLiveSerializer(serializers.Serializer):
    websocket_url = serializers.CharField()
    call_id = serializers.CharField()
    temp_token = serializers.CharField(
        help_text="Single-use, for this call's socket only, redeemable for 5 minutes "
        "(`expires_at`); the subscription then lasts as long as the socket."
    )
    expires_at = serializers.DateTimeField()
    connection_info = LiveConnectionInfoSerializer()
