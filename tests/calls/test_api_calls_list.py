"""GET /v1/calls filters and pagination; transcripts and analysis of a call."""

from __future__ import annotations

import datetime as dt

import pytest

from calls.models import Call, TranscriptEntry

UTC = dt.UTC


def at(day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, 0, tzinfo=UTC)


@pytest.fixture
def calls(make_call, make_assistant, make_widget):
    """Five calls on 1-5 March 2026 at noon, with mixed statuses, assistants and widgets."""
    first, second = make_assistant(name="First"), make_assistant(name="Second")
    widget = make_widget(assistant=first)
    specs = [
        ("queued", first, None),
        ("in_progress", first, widget),
        ("completed", second, widget),
        ("completed", first, None),
        ("failed", second, None),
    ]
    made = []
    for day, (status, assistant, w) in enumerate(specs, start=1):
        call = make_call(assistant=assistant, widget=w, status=status)
        Call.objects.filter(pk=call.pk).update(created_at=at(day))
        call.refresh_from_db()
        made.append(call)
    return {"calls": made, "first": first, "second": second, "widget": widget}


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [c["id"] for c in response.json()["data"]]


def pick(calls, *days) -> list[str]:
    """Ids of the calls made on these days, newest first (the list order)."""
    return [calls["calls"][d - 1].id for d in sorted(days, reverse=True)]


@pytest.mark.django_db
class TestFilters:
    def test_unfiltered_list_is_newest_first(self, api, calls):
        assert ids(api.get("/v1/calls")) == pick(calls, 1, 2, 3, 4, 5)

    @pytest.mark.parametrize(
        "value, days",
        [
            ("completed", (3, 4)),
            ("2", (3, 4)),
            ("queued", (1,)),
            ("0", (1,)),
            ("in_progress", (2,)),
            ("1", (2,)),
            ("failed", (5,)),
            ("3", (5,)),
        ],
    )
    def test_status_filter_by_name_or_number(self, api, calls, value, days):
        response = api.get("/v1/calls", {"status": value})
        assert ids(response) == pick(calls, *days)
        assert response.json()["meta"]["total"] == len(days)

    def test_type_filter(self, api, calls):
        assert ids(api.get("/v1/calls", {"type": "web"})) == pick(calls, 1, 2, 3, 4, 5)

    def test_assistant_filter(self, api, calls):
        assert ids(api.get("/v1/calls", {"assistant": calls["second"].id})) == pick(calls, 3, 5)

    def test_widget_filter(self, api, calls):
        assert ids(api.get("/v1/calls", {"widget": calls["widget"].id})) == pick(calls, 2, 3)

    def test_combined_filters(self, api, calls):
        params = {"status": "completed", "assistant": calls["first"].id}
        assert ids(api.get("/v1/calls", params)) == pick(calls, 4)

    @pytest.mark.parametrize(
        "params, days",
        [
            ({"created_after": "2026-03-03"}, (3, 4, 5)),
            ({"created_before": "2026-03-03"}, (1, 2, 3)),  # a date includes its whole day
            ({"created_after": "2026-03-02", "created_before": "2026-03-04"}, (2, 3, 4)),
            ({"created_after": "2026-03-03T12:00:00Z"}, (3, 4, 5)),
            ({"created_after": "2026-03-03T12:00:01Z"}, (4, 5)),
            ({"created_before": "2026-03-03T11:59:59Z"}, (1, 2)),
            ({"created_before": "2026-03-03T12:00:00+00:00"}, (1, 2, 3)),
            ({"created_after": "2026-03-03T13:00:00+02:00"}, (3, 4, 5)),  # 11:00 UTC
            ({"created_after": "2026-03-03T12:00:00"}, (3, 4, 5)),  # naive means UTC
            ({"created_after": "2026-04-01"}, ()),
        ],
    )
    def test_created_range_filters_accept_dates_and_datetimes(self, api, calls, params, days):
        assert ids(api.get("/v1/calls", params)) == pick(calls, *days)

    def test_pagination_meta_and_pages(self, api, calls):
        first = api.get("/v1/calls", {"limit": 2}).json()
        second = api.get("/v1/calls", {"limit": 2, "offset": 2}).json()
        beyond = api.get("/v1/calls", {"limit": 2, "offset": 10}).json()
        assert first["meta"] == {"total": 5, "limit": 2, "offset": 0}
        assert second["meta"] == {"total": 5, "limit": 2, "offset": 2}
        assert [c["id"] for c in first["data"] + second["data"]] == pick(calls, 2, 3, 4, 5)
        assert beyond["data"] == [] and beyond["meta"]["total"] == 5

    def test_filtered_pagination_counts_only_matches(self, api, calls):
        body = api.get("/v1/calls", {"status": "completed", "limit": 1}).json()
        assert body["meta"] == {"total": 2, "limit": 1, "offset": 0}
        assert [c["id"] for c in body["data"]] == pick(calls, 4)

    @pytest.mark.parametrize(
        "params, name",
        [
            ({"status": "done"}, "status"),
            ({"status": "8"}, "status"),
            ({"type": "phone"}, "type"),
            ({"assistant": "abc"}, "assistant"),
            ({"widget": "665E4A34C65BB95F2F2D72E1"}, "widget"),
            ({"created_after": "yesterday"}, "created_after"),
            ({"created_before": "2026-13-01"}, "created_before"),
            ({"created_after": "2026-03-05", "created_before": "2026-03-01"}, "created_after"),
            ({"limit": 101}, "limit"),
            ({"limit": 0}, "limit"),
            ({"limit": "x"}, "limit"),
            ({"offset": -1}, "offset"),
            ({"sort": "created_at"}, "sort"),
        ],
    )
    def test_bad_filter_value_is_400_naming_the_parameter(self, api, calls, params, name):
        response = api.get("/v1/calls", params)
        assert response.status_code == 400
        body = response.json()
        assert body["status"] is False
        assert name in body["message"]
        assert name in body["errors"]


@pytest.mark.django_db
class TestTranscriptsAndAnalysis:
    def test_transcripts_of_queued_call_are_pending_and_empty(self, api, make_call):
        call = make_call()
        data = api.get(f"/v1/calls/{call.id}/transcripts").json()["data"]
        assert data == {"call_id": call.id, "transcript_status": "pending", "transcripts": []}

    def test_transcripts_come_back_in_order(self, api, make_call):
        call = make_call(status="completed")
        # Written out of order on purpose: the API orders by sequence number.
        TranscriptEntry.objects.create(
            call=call, seq=2, role="user", text="Thanks!", start_ms=4000, end_ms=4500
        )
        TranscriptEntry.objects.create(
            call=call, seq=0, role="assistant", text="Hello, how can I help?", start_ms=0
        )
        TranscriptEntry.objects.create(
            call=call, seq=1, role="user", text="When are you open?", interrupted=True
        )

        data = api.get(f"/v1/calls/{call.id}/transcripts").json()["data"]

        assert data["transcript_status"] == "ready"
        assert [(t["role"], t["text"]) for t in data["transcripts"]] == [
            ("assistant", "Hello, how can I help?"),
            ("user", "When are you open?"),
            ("user", "Thanks!"),
        ]
        assert data["transcripts"][0]["start_ms"] == 0
        assert data["transcripts"][1]["interrupted"] is True
        assert data["transcripts"][2]["end_ms"] == 4500
        assert set(data["transcripts"][0]) == {
            "role",
            "text",
            "start_ms",
            "end_ms",
            "interrupted",
            "source",
            "created_at",
        }

    @pytest.mark.parametrize(
        "status, expected",
        [("in_progress", "in_progress"), ("completed", "empty"), ("failed", "empty")],
    )
    def test_transcript_status_follows_call_status(self, api, make_call, status, expected):
        call = make_call(status=status)
        data = api.get(f"/v1/calls/{call.id}/transcripts").json()["data"]
        assert data["transcript_status"] == expected

    def test_analysis_pending_with_null_summary_until_set(self, api, make_call):
        call = make_call(status="completed")

        pending = api.get(f"/v1/calls/{call.id}/analysis").json()["data"]
        assert pending == {
            "call_id": call.id,
            "analysis_status": "pending",
            "summary": None,
            "outcome": None,
            "extracted_data": {},
            "error": None,
        }

        call.analysis = {
            "summary": "Asked for opening hours.",
            "outcome": "answered",
            "extracted_data": {"topic": "hours"},
        }
        call.analysis_status = "ready"
        call.save()
        ready = api.get(f"/v1/calls/{call.id}/analysis").json()["data"]
        assert ready == {
            "call_id": call.id,
            "analysis_status": "ready",
            "summary": "Asked for opening hours.",
            "outcome": "answered",
            "extracted_data": {"topic": "hours"},
            "error": None,
        }


@pytest.mark.parametrize(
    "status, code", [("ringing", 4), ("no_answer", 5), ("busy", 6), ("canceled", 7)]
)
def test_phone_statuses_keep_seed_numbers_and_add_their_own(api, make_call, status, code):
    call = make_call(status=status)
    body = api.get("/v1/calls", {"status": str(code)}).json()
    assert [c["id"] for c in body["data"]] == [call.id]
    assert body["data"][0]["status"] == code and body["data"][0]["status_label"] == status
