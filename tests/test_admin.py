"""The Django admin: pages render, API keys are shown once, widget preview, org scoping."""

from __future__ import annotations

import hashlib
import re

import pytest
from django.contrib.auth.models import Permission, User

from accounts.models import APIKey, Membership
from calls.models import TranscriptEntry


@pytest.fixture
def superuser(db):
    # No password: force_login needs none, and hashing one is slow.
    return User.objects.create(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def objects(organization, api_key, make_assistant, make_widget, make_call):
    assistant = make_assistant(knowledge=[{"question": "Opening hours?", "answer": "Nine."}])
    widget = make_widget(assistant=assistant, allowed_origins=["https://app.example.com"])
    call = make_call(assistant=assistant, widget=widget, status="completed")
    TranscriptEntry.objects.create(call=call, seq=0, role="user", text="Hello there")
    return {
        "organization": organization,
        "apikey": api_key[0],
        "assistant": assistant,
        "widget": widget,
        "call": call,
    }


PAGES = [
    ("accounts", "organization", "organization"),
    ("accounts", "apikey", "apikey"),
    ("assistants", "assistant", "assistant"),
    ("widgets", "widget", "widget"),
    ("calls", "call", "call"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("app, model, key", PAGES, ids=[p[1] for p in PAGES])
def test_changelist_and_change_page_render(admin_client, objects, app, model, key):
    obj = objects[key]

    changelist = admin_client.get(f"/admin/{app}/{model}/")
    change = admin_client.get(f"/admin/{app}/{model}/{obj.pk}/change/")

    assert changelist.status_code == 200
    assert change.status_code == 200
    assert str(obj.pk) in changelist.content.decode()


@pytest.mark.django_db
def test_assistant_change_page_has_knowledge_inline(admin_client, objects):
    page = admin_client.get(f"/admin/assistants/assistant/{objects['assistant'].pk}/change/")
    content = page.content.decode()
    assert "knowledge-TOTAL_FORMS" in content
    assert "Opening hours?" in content


@pytest.mark.django_db
def test_call_change_page_shows_transcript(admin_client, objects):
    page = admin_client.get(f"/admin/calls/call/{objects['call'].pk}/change/")
    assert "Hello there" in page.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("app, model", [("assistants", "assistant"), ("widgets", "widget")])
def test_add_pages_render(admin_client, objects, app, model):
    assert admin_client.get(f"/admin/{app}/{model}/add/").status_code == 200


@pytest.mark.django_db
def test_adding_api_key_in_admin_shows_secret_once_and_stores_only_hash(
    admin_client, organization, client_with_key
):
    response = admin_client.post(
        "/admin/accounts/apikey/add/",
        {"organization": organization.pk, "name": "From admin", "scopes": ["widgets:read"]},
    )

    assert response.status_code == 200
    content = response.content.decode()
    match = re.search(r'value="(vwk_[^"]+)" id="new-api-key"', content)
    assert match, content
    secret = match.group(1)
    api_key = APIKey.objects.get(name="From admin")
    assert api_key.organization == organization
    assert api_key.scopes == ["widgets:read"]
    assert api_key.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert api_key.prefix == secret[:12]
    assert client_with_key(secret).get("/v1/widgets").status_code == 200

    for page in (
        "/admin/accounts/apikey/",
        f"/admin/accounts/apikey/{api_key.pk}/change/",
        "/admin/",
    ):
        assert secret not in admin_client.get(page).content.decode()


@pytest.mark.django_db
def test_admin_api_key_form_rejects_unknown_scope(admin_client, organization):
    response = admin_client.post(
        "/admin/accounts/apikey/add/",
        {"organization": organization.pk, "name": "Bad", "scopes": ["calls:delete"]},
    )
    assert response.status_code == 200
    assert not APIKey.objects.filter(name="Bad").exists()
    assert "new-api-key" not in response.content.decode()


@pytest.mark.django_db
def test_widget_change_page_has_live_preview_and_embed_snippet(admin_client, objects):
    widget = objects["widget"]

    content = admin_client.get(f"/admin/widgets/widget/{widget.pk}/change/").content.decode()

    assert 'id="widget-preview"' in content
    assert 'id="embed-snippet"' in content
    assert "/static/widget/embed.js" in content
    assert f"data-widget-id=&quot;{widget.id}&quot;" in content


@pytest.mark.django_db
def test_revoke_action_revokes_selected_keys(admin_client, objects, client_with_key, make_api_key):
    api_key, secret = make_api_key(name="to revoke")
    response = admin_client.post(
        "/admin/accounts/apikey/",
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )
    assert response.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    assert client_with_key(secret).get("/v1/widgets").status_code == 401


@pytest.fixture
def staff_client(client, organization):
    user = User.objects.create(username="staff", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            codename__in=[
                "view_widget",
                "change_widget",
                "view_assistant",
                "view_call",
                "view_apikey",
                "view_organization",
            ]
        )
    )
    Membership.objects.create(user=user, organization=organization)
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_staff_member_sees_only_their_organizations_widgets(
    staff_client, make_widget, other_organization, make_assistant
):
    mine = make_widget(call_to_action="Mine")
    theirs = make_widget(other_organization, call_to_action="Theirs")

    changelist = staff_client.get("/admin/widgets/widget/").content.decode()

    assert mine.id in changelist
    assert theirs.id not in changelist
    assert staff_client.get(f"/admin/widgets/widget/{mine.pk}/change/").status_code == 200
    other = staff_client.get(f"/admin/widgets/widget/{theirs.pk}/change/")
    assert other.status_code in (302, 404)
    assert (
        "Theirs"
        not in staff_client.get(
            other.url if other.status_code == 302 else "/admin/"
        ).content.decode()
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/admin/assistants/assistant/", "/admin/calls/call/", "/admin/accounts/apikey/"]
)
def test_staff_member_lists_are_scoped_to_their_organization(
    staff_client, path, organization, other_organization, make_assistant, make_call, make_api_key
):
    mine = [make_assistant(name="MineA"), make_call(), make_api_key(name="MineKey")[0]]
    theirs = [
        make_assistant(other_organization, name="TheirsA"),
        make_call(other_organization),
        make_api_key(other_organization, name="TheirsKey")[0],
    ]
    content = staff_client.get(path).content.decode()
    index = {"assistant": 0, "call": 1, "apikey": 2}[path.rstrip("/").rsplit("/", 1)[-1]]
    assert str(mine[index].pk) in content or str(mine[index]) in content
    assert str(theirs[index].pk) not in content
    assert "Theirs" not in content


@pytest.mark.django_db
def test_staff_member_sees_only_their_organization(staff_client, organization, other_organization):
    content = staff_client.get("/admin/accounts/organization/").content.decode()
    assert organization.name in content
    assert other_organization.name not in content


# --- The call review console (calls.admin, calls.admin_views) ---

WAV = b"RIFF" + bytes(range(256)) * 4  # 1028 bytes of stand-in audio


@pytest.fixture
def console_call(make_call, make_assistant, make_widget, settings, tmp_path, organization):
    from calls.models import CallEvent, CallTurn
    from webhooks.models import WebhookDelivery, WebhookEndpoint

    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "recordings").mkdir()
    assistant = make_assistant(name="Console bot")
    widget = make_widget(assistant=assistant)
    call = make_call(
        assistant=assistant,
        widget=widget,
        status="completed",
        end_reason="customer-ended-call",
        analysis_status="ready",
        analysis={
            "summary": "Asked about hours.",
            "outcome": "answered",
            "extracted_data": {"city": "Lyon"},
        },
    )
    (tmp_path / "recordings" / f"{call.id}.wav").write_bytes(WAV)
    call.recording.name = f"recordings/{call.id}.wav"
    call.save()
    TranscriptEntry.objects.create(call=call, seq=0, role="assistant", text="Hi!", start_ms=0)
    TranscriptEntry.objects.create(
        call=call, seq=1, role="user", text="When are you open?", start_ms=65_400, end_ms=67_000
    )
    CallTurn.objects.create(
        call=call,
        index=0,
        timings={
            "speech_end_ms": 67_000,
            "endpoint_ms": 300,
            "transcript_ms": 420,
            "first_text_ms": 900,
            "first_audio_ms": 1250,
        },
    )
    CallTurn.objects.create(call=call, index=1, timings={"endpoint_ms": 250, "first_audio_ms": 700})
    event = CallEvent.objects.create(
        organization=organization, call=call, seq=1, type="call.ended", payload={}
    )
    endpoint = WebhookEndpoint.objects.create(
        organization=organization, url="https://hooks.example.com/in", secret_encrypted="x"
    )
    WebhookDelivery.objects.create(
        organization=organization,
        endpoint=endpoint,
        event_id=event.id,
        event_type=event.type,
        body="{}",
        status="failed",
        attempt_count=3,
        last_status_code=500,
    )
    return call


@pytest.mark.django_db
def test_call_console_shows_player_transcript_clock_waterfall_analysis_and_deliveries(
    staff_client, console_call
):
    content = staff_client.get(f"/admin/calls/call/{console_call.pk}/change/").content.decode()

    assert f'src="/admin/calls/call/{console_call.pk}/recording/"' in content
    assert 'data-start-ms="65400"' in content
    assert ">01:05<" in content  # 65.4 s as mm:ss
    assert "When are you open?" in content
    assert content.count('<g class="turn"') == 2
    # Turn 0's stages derived from its marks: 300, 420-300, 900-420, 1250-900.
    for stage, ms in [
        ("endpointing", 300),
        ("speech-to-text", 120),
        ("reply", 480),
        ("first audio", 350),
    ]:
        assert f'data-stage="{stage}" data-ms="{ms}"' in content
    # Turn 1 measured only endpoint and first audio: first audio spans 250..700.
    assert 'data-stage="first audio" data-ms="450"' in content
    assert '<td class="first_audio_ms">1250</td>' in content
    assert "Asked about hours." in content and "answered" in content and "Lyon" in content
    assert "https://hooks.example.com/in: failed, 3 attempts (last HTTP 500)" in content


@pytest.mark.django_db
def test_call_recording_admin_view_serves_ranges_to_the_calls_staff(staff_client, console_call):
    url = f"/admin/calls/call/{console_call.pk}/recording/"

    whole = staff_client.get(url)
    part = staff_client.get(url, headers={"Range": "bytes=4-99"})
    outside = staff_client.get(url, headers={"Range": "bytes=5000-"})

    assert whole.status_code == 200
    assert b"".join(whole.streaming_content) == WAV
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 4-99/{len(WAV)}"
    assert part.content == WAV[4:100]
    assert outside.status_code == 416


@pytest.mark.django_db
def test_another_organizations_staff_get_404_for_the_call_page_and_recording(
    client, console_call, other_organization
):
    user = User.objects.create(username="other-staff", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_call"))
    Membership.objects.create(user=user, organization=other_organization)
    client.force_login(user)

    recording = client.get(f"/admin/calls/call/{console_call.pk}/recording/")
    page = client.get(f"/admin/calls/call/{console_call.pk}/change/")

    assert recording.status_code == 404
    assert page.status_code == 404
    assert "When are you open?" not in page.content.decode()


@pytest.mark.django_db
def test_recording_view_needs_a_staff_session(client, console_call):
    response = client.get(f"/admin/calls/call/{console_call.pk}/recording/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_dashboard_counts_calls_latency_end_reasons_and_outcomes_of_own_organization(
    staff_client, console_call, make_call, other_organization
):
    from calls.models import CallTurn

    extra = make_call(assistant=console_call.assistant, end_reason="assistant-ended-call")
    for index, ms in enumerate([100, 200, 300, 400]):
        CallTurn.objects.create(call=extra, index=index, timings={"first_audio_ms": ms})
    make_call(other_organization, end_reason="theirs-ended")

    changelist = staff_client.get("/admin/calls/call/").content.decode()
    content = staff_client.get("/admin/calls/call/dashboard/").content.decode()

    assert 'href="/admin/calls/call/dashboard/"' in changelist
    assert '<span class="total">2</span>' in content
    # Own first-audio values: 1250, 700, 100, 200, 300, 400 -> p50 300, p95 1250 (nearest rank).
    assert '<td class="turns">6</td><td class="p50">300</td><td class="p95">1250</td>' in content
    assert 'data-reason="customer-ended-call"><td>customer-ended-call</td><td class="count">1<' in (
        content
    )
    assert 'data-outcome="answered"><td>answered</td><td class="count">1<' in content
    assert "theirs-ended" not in content
