"""The call review console in the admin: what the call page and the dashboard show.

Pure functions of already-scoped querysets, so `calls.admin` decides who sees what and these
only shape data for the templates (SVG geometry included: charts are drawn server-side)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from calls.models import Call, CallTurn

# The waterfall's stages: (label, mark that ends it), each measured from the end of the
# caller's speech (see calls.serializers.CallTurnSerializer); a stage starts where the
# previous measured mark ended.
STAGES = (
    ("endpointing", "endpoint_ms", "#8e44ad"),
    ("speech-to-text", "transcript_ms", "#2980b9"),
    ("reply", "first_text_ms", "#27ae60"),
    ("first audio", "first_audio_ms", "#e67e22"),
)
CHART_WIDTH = 600
LABEL_WIDTH = 70
ROW_HEIGHT = 28
DASHBOARD_DAYS = 30


def timing(stored: object, name: str) -> int | None:
    """A stored timing as whole ms; anything not a number reads as "not measured"."""
    value = stored.get(name) if isinstance(stored, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(round(value))


def mmss(ms: int | None) -> str:
    if ms is None:
        return ""
    seconds = ms // 1000
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def waterfall(turns: list[CallTurn]) -> dict:
    """One row per stored turn: stage segments (ms and SVG x/width) and the marks as text."""
    rows = []
    for turn in turns:
        marks = {name: timing(turn.timings, name) for _, name, _ in STAGES}
        segments, previous = [], 0
        for label, name, color in STAGES:
            end = marks[name]
            if end is None:
                continue
            start = min(previous, end)
            segments.append(
                {"label": label, "start": start, "end": end, "ms": end - start, "color": color}
            )
            previous = end
        rows.append({"index": turn.index, "marks": marks, "segments": segments})
    longest = max((s["end"] for r in rows for s in r["segments"]), default=0) or 1
    scale = (CHART_WIDTH - LABEL_WIDTH - 10) / longest
    for position, row in enumerate(rows):
        row["y"] = position * ROW_HEIGHT
        row["text_y"] = row["y"] + ROW_HEIGHT // 2 + 4
        for segment in row["segments"]:
            segment["x"] = LABEL_WIDTH + round(segment["start"] * scale, 1)
            segment["width"] = max(round(segment["ms"] * scale, 1), 1)
    return {
        "rows": rows,
        "width": CHART_WIDTH,
        "height": max(len(rows), 1) * ROW_HEIGHT,
        "stages": STAGES,
    }


def transcript_lines(call: Call) -> list[dict]:
    return [
        {"entry": entry, "clock": mmss(entry.start_ms)}
        for entry in call.transcript.all().order_by("seq")
    ]


#: Apps that act on call events (webhooks) register how to find what they sent for a set of
#: events: ``find(organization_id, event_ids) -> {event_id: [rows]}``, rows with `endpoint`,
#: `status`, `attempt_count`, `last_status_code`, `last_error`.
DELIVERY_FINDERS: list[Callable[[str, list[str]], dict[str, list]]] = []


def event_timeline(call: Call) -> list[dict]:
    """The call's events, each with the webhook deliveries made of it (keyed by event id)."""
    events = list(call.events.order_by("seq"))
    deliveries = defaultdict(list)
    for find in DELIVERY_FINDERS:  # calls imports no app that reacts to its events
        for event_id, rows in find(call.organization_id, [e.id for e in events]).items():
            deliveries[event_id].extend(rows)
    return [{"event": e, "deliveries": deliveries.get(e.id, [])} for e in events]


def percentile(values: list[int], p: float) -> int | None:
    """Nearest-rank percentile (a value that was measured, never an interpolation)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]


def dashboard(calls: QuerySet[Call], now=None) -> dict:
    """Numbers for the last DASHBOARD_DAYS days of the given (already scoped) calls."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    first_day = today - timedelta(days=DASHBOARD_DAYS - 1)
    recent = calls.filter(created_at__date__gte=first_day)

    per_day = dict(
        recent.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    days = [first_day + timedelta(days=i) for i in range(DASHBOARD_DAYS)]
    most = max(per_day.values(), default=0) or 1
    bar_width, chart_height = 20, 120
    bars = []
    for i, day in enumerate(days):
        count = per_day.get(day, 0)
        height = round(count / most * chart_height, 1)
        bars.append(
            {
                "day": day,
                "count": count,
                "x": i * bar_width,
                "y": chart_height - height,
                "height": height,
            }
        )

    by_assistant: dict[str, list[int]] = defaultdict(list)
    by_widget: dict[str, list[int]] = defaultdict(list)
    turns = CallTurn.objects.filter(call__in=recent).values_list(
        "timings", "call__assistant__name", "call__assistant_id", "call__widget_id"
    )
    for timings, assistant_name, assistant_id, widget_id in turns:
        value = timing(timings, "first_audio_ms")
        if value is None:
            continue
        if assistant_id:
            by_assistant[f"{assistant_name} ({assistant_id})"].append(value)
        if widget_id:
            by_widget[widget_id].append(value)

    def latency_rows(groups: dict[str, list[int]]) -> list[dict]:
        return [
            {"name": name, "turns": len(v), "p50": percentile(v, 50), "p95": percentile(v, 95)}
            for name, v in sorted(groups.items())
        ]

    outcomes = Counter(
        (analysis or {}).get("outcome") if isinstance(analysis, dict) else None
        for analysis in recent.values_list("analysis", flat=True)
    )
    return {
        "days": DASHBOARD_DAYS,
        "total": sum(per_day.values()),
        "bars": bars,
        "chart_width": DASHBOARD_DAYS * bar_width + 20,  # room for the last date label
        "chart_height": chart_height,
        "bar_width": bar_width - 4,
        "latency_by_assistant": latency_rows(by_assistant),
        "latency_by_widget": latency_rows(by_widget),
        "end_reasons": list(
            recent.values_list("end_reason").annotate(n=Count("id")).order_by("-n", "end_reason")
        ),
        "outcomes": sorted(
            ((k or "", n) for k, n in outcomes.items()), key=lambda item: (-item[1], item[0])
        ),
    }
