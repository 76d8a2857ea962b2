"""The call review console in the admin, in a real Chromium against a real daphne: the player
plays the recording through the staff-session range view, transcript lines seek it, the
waterfall shows the stored turns, the dashboard renders, and other organizations get 404."""

from __future__ import annotations

import json
import secrets

import pytest

pytestmark = pytest.mark.browser

# Runs in the server's own `manage.py shell`: a call of the demo organization with a 6 s
# two-channel WAV stored through the recordings storage, transcript, turns and an event; and
# a staff member of another organization.
SETUP = """
import io, json, math, struct, wave
from django.contrib.auth.models import Permission, User
from django.core.files.base import ContentFile
from accounts.models import Membership, Organization
from assistants.models import Assistant
from calls.models import Call, CallEvent, CallTurn, TranscriptEntry

rate = 8000
frames = b"".join(
    struct.pack("<hh", int(8000 * math.sin(2 * math.pi * 440 * i / rate)), 0)
    for i in range(rate * 6)
)
buffer = io.BytesIO()
with wave.open(buffer, "wb") as out:
    out.setnchannels(2)
    out.setsampwidth(2)
    out.setframerate(rate)
    out.writeframes(frames)
demo = Organization.objects.get(name="Demo")
# An assistant of its own: the dashboard's latency row for it is this call's turns only.
assistant = Assistant.objects.create(organization=demo, name="Console bot", system_prompt="x")
call = Call.objects.create(
    organization=demo, assistant=assistant, status="completed", end_reason="customer-ended-call",
    analysis_status="ready",
    analysis={"summary": "A test call.", "outcome": "answered", "extracted_data": {}},
)
call.recording.save(f"{call.id}.wav", ContentFile(buffer.getvalue()))
for seq, (role, text, start) in enumerate(
    [("assistant", "Hello there.", 0), ("user", "Where is the shop?", 2500),
     ("assistant", "Twelve Harbour Street.", 4000)]
):
    TranscriptEntry.objects.create(call=call, seq=seq, role=role, text=text, start_ms=start)
TURNS = [
    {"speech_end_ms": 3600, "endpoint_ms": 310, "transcript_ms": 450, "first_text_ms": 880,
     "first_audio_ms": 1210},
    {"speech_end_ms": 5900, "endpoint_ms": 280, "transcript_ms": 390, "first_text_ms": 700,
     "first_audio_ms": 990},
]
for index, timings in enumerate(TURNS):
    CallTurn.objects.create(call=call, index=index, timings=timings)
CallEvent.objects.create(organization=demo, call=call, seq=1, type="call.ended", payload={})
other, _ = Organization.objects.get_or_create(name="Console other org")
staff = User.objects.create(username="console-other-staff", is_staff=True)
staff.set_password(PASSWORD)
staff.save()
staff.user_permissions.set(Permission.objects.filter(codename="view_call"))
Membership.objects.create(user=staff, organization=other)
print(json.dumps({"call_id": call.id, "turns": TURNS}))
"""


@pytest.fixture(scope="module")
def console(daphne_server):
    password = secrets.token_urlsafe(16)
    daphne_server.env["DJANGO_SUPERUSER_PASSWORD"] = password
    try:
        daphne_server.manage(
            "createsuperuser", "--noinput", "--username", "console-admin", "--email", "c@e.com"
        )
    finally:
        daphne_server.env.pop("DJANGO_SUPERUSER_PASSWORD", None)
    other_password = secrets.token_urlsafe(16)
    script = f"PASSWORD = {other_password!r}\n{SETUP}"
    made = json.loads(daphne_server.manage("shell", "-c", script).strip().splitlines()[-1])
    return {
        **made,
        "admin": ("console-admin", password),
        "other": ("console-other-staff", other_password),
    }


def login(page, base: str, credentials: tuple[str, str], next_path: str):
    page.goto(f"{base}/admin/login/?next={next_path}")
    page.fill("#id_username", credentials[0])
    page.fill("#id_password", credentials[1])
    return page.click("input[type=submit]")


def test_console_plays_recording_seeks_from_transcript_and_draws_stored_turns(
    daphne_server, chromium, console, artifacts_dir
):
    base = daphne_server.page_base
    call_id = console["call_id"]
    context = chromium.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    recording_statuses: list[int] = []
    page.on(
        "response",
        lambda r: recording_statuses.append(r.status) if "/recording/" in r.url else None,
    )
    try:
        login(page, base, console["admin"], f"/admin/calls/call/{call_id}/change/")
        page.wait_for_selector("#call-audio")
        page.wait_for_function("() => document.querySelector('#call-audio').duration > 5")

        # A transcript line seeks the player to its start (paused: it stays exactly there).
        page.click(".transcript-line[data-start-ms='2500']")
        assert page.evaluate("document.querySelector('#call-audio').currentTime") == 2.5

        # Playing (muted: no autoplay policy in the way) advances through served ranges.
        page.evaluate(
            "() => { const a = document.querySelector('#call-audio'); a.muted = true;"
            " a.currentTime = 0; return a.play(); }"
        )
        page.wait_for_function(
            "() => document.querySelector('#call-audio').currentTime > 0.5", timeout=15000
        )
        assert 206 in recording_statuses, recording_statuses

        groups = page.locator("svg.waterfall g.turn")
        assert groups.count() == len(console["turns"])
        for index, timings in enumerate(console["turns"]):
            row = page.locator(f"table.waterfall-numbers tr[data-turn='{index}']")
            for name in ("endpoint_ms", "transcript_ms", "first_text_ms", "first_audio_ms"):
                assert row.locator(f"td.{name}").inner_text() == str(timings[name])
            stages = groups.nth(index).locator("rect.stage")
            assert [stages.nth(i).get_attribute("data-ms") for i in range(stages.count())] == [
                str(timings["endpoint_ms"]),
                str(timings["transcript_ms"] - timings["endpoint_ms"]),
                str(timings["first_text_ms"] - timings["transcript_ms"]),
                str(timings["first_audio_ms"] - timings["first_text_ms"]),
            ]
        assert "A test call." in page.locator("#call-analysis").inner_text()
        assert "call.ended" in page.locator("#call-events").inner_text()
        page.screenshot(path=str(artifacts_dir / "call-console.png"), full_page=True)

        page.goto(f"{base}/admin/calls/call/")
        page.click("#calls-dashboard-link")
        page.wait_for_selector("#calls-per-day svg")
        assert int(page.locator("#calls-per-day .total").inner_text()) >= 1
        assert page.locator("#calls-per-day g.day").count() == 30
        # Its turns' first audio: 1210 and 990 ms -> p50 990, p95 1210 (nearest rank).
        latency = page.locator("#latency-by-assistant tr", has_text="Console bot")
        assert latency.locator("td.turns").inner_text() == "2"
        assert latency.locator("td.p50").inner_text() == "990"
        assert latency.locator("td.p95").inner_text() == "1210"
        assert "customer-ended-call" in page.locator("#end-reasons").inner_text()
        assert "answered" in page.locator("#outcomes").inner_text()
        page.screenshot(path=str(artifacts_dir / "call-dashboard.png"), full_page=True)
        assert errors == []
    finally:
        context.close()


def test_another_organizations_staff_get_404_for_the_console_and_recording(
    daphne_server, chromium, console
):
    base = daphne_server.page_base
    call_id = console["call_id"]
    context = chromium.new_context()
    page = context.new_page()
    try:
        login(page, base, console["other"], "/admin/")
        page.wait_for_selector("#site-name")
        change = page.goto(f"{base}/admin/calls/call/{call_id}/change/")
        recording = page.goto(f"{base}/admin/calls/call/{call_id}/recording/")
        assert change.status == 404
        assert recording.status == 404
    finally:
        context.close()
