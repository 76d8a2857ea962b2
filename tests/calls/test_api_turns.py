"""GET /v1/calls/{id}/turns: each stored turn's timings in milliseconds, as the engine
reported them (`voice.events.TurnTimings` via `calls.services.turn_record`)."""

from __future__ import annotations

import pytest

from calls import services

TIMINGS = (
    "speech_end_ms",
    "endpoint_silence_ms",
    "endpoint_ms",
    "transcript_ms",
    "first_text_ms",
    "first_audio_ms",
    "interruption_stop_ms",
)

pytestmark = pytest.mark.django_db


def test_turns_list_each_turns_named_timings_in_order_with_null_where_not_measured(api, make_call):
    call = make_call(status="completed")
    services.turn_record(
        call_id=call.id,
        index=2,
        timings={
            "speech_end_ms": 7400,
            "endpoint_silence_ms": 500,
            "endpoint_ms": 512,
            "transcript_ms": 690,
            "first_text_ms": 702,
            "first_audio_ms": 905,
            "interruption_stop_ms": 160,
        },
    )
    # The engine's shape for a turn without a reply: the later stages are null.
    services.turn_record(
        call_id=call.id,
        index=1,
        timings={"speech_end_ms": 2100, "endpoint_silence_ms": 500, "endpoint_ms": 505.6},
    )

    response = api.get(f"/v1/calls/{call.id}/turns")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] is True
    data = body["data"]
    assert data["call_id"] == call.id
    first, second = data["turns"]
    assert set(first) == {"index", "created_at", *TIMINGS}
    assert first["index"] == 1
    assert first["endpoint_ms"] == 506  # whole milliseconds
    assert [first[name] for name in TIMINGS[3:]] == [None, None, None, None]
    assert second == {
        "index": 2,
        "speech_end_ms": 7400,
        "endpoint_silence_ms": 500,
        "endpoint_ms": 512,
        "transcript_ms": 690,
        "first_text_ms": 702,
        "first_audio_ms": 905,
        "interruption_stop_ms": 160,
        "created_at": second["created_at"],
    }


def test_a_stored_value_that_is_not_a_number_reads_as_not_measured(api, make_call):
    call = make_call(status="completed")
    services.turn_record(
        call_id=call.id, index=1, timings={"first_audio_ms": "fast", "endpoint_ms": True}
    )

    [turn] = api.get(f"/v1/calls/{call.id}/turns").json()["data"]["turns"]

    assert turn["first_audio_ms"] is None and turn["endpoint_ms"] is None


def test_a_call_without_turns_has_an_empty_list(api, make_call):
    call = make_call()
    assert api.get(f"/v1/calls/{call.id}/turns").json()["data"] == {
        "call_id": call.id,
        "turns": [],
    }


def test_another_organizations_call_is_404_and_shows_nothing(other_api, make_call):
    call = make_call(status="completed")
    services.turn_record(call_id=call.id, index=1, timings={"first_audio_ms": 900})

    response = other_api.get(f"/v1/calls/{call.id}/turns")

    assert response.status_code == 404
    assert response.json()["status"] is False
    assert "900" not in response.content.decode()


def test_turns_need_the_calls_read_scope(make_api, make_call):
    call = make_call()
    response = make_api(scopes=["calls:write"]).get(f"/v1/calls/{call.id}/turns")
    assert response.status_code == 403
    assert "calls:read" in response.json()["message"]
