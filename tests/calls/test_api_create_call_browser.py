"""POST /v1/widgets/create-call from a browser (no key): origins, CORS, consent; and the
public widget configuration the embed script reads."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.utils import timezone

from calls.models import Call

ORIGIN = "https://app.example.com"
CREATE_CALL = "/v1/widgets/create-call"


def browser_post(anon, widget_id, origin=ORIGIN, **body):
    headers = {"Origin": origin} if origin else {}
    return anon.post(CREATE_CALL, {"widget_id": widget_id, **body}, headers=headers)


def preflight(anon, origin, path=CREATE_CALL):
    return anon.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )


@pytest.mark.django_db
class TestBrowserCreateCall:
    def test_allowed_origin_creates_call_and_gets_cors_header(self, anon, widget):
        response = browser_post(anon, widget.id)

        assert response.status_code == 201, response.content
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        body = response.json()
        assert body["message"] == "Call created"
        assert body["assistant_id"] == widget.assistant_id
        call = Call.objects.get(pk=body["call_id"])
        assert call.status == "queued"
        assert call.widget_id == widget.id
        assert call.origin == ORIGIN
        assert call.consent is None

    def test_origin_is_matched_case_insensitively(self, anon, widget):
        response = browser_post(anon, widget.id, origin="https://APP.example.com")
        assert response.status_code == 201

    def test_preflight_from_allowed_origin_gets_cors_headers(self, anon, widget):
        response = preflight(anon, ORIGIN)

        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        assert "content-type" in response.headers["Access-Control-Allow-Headers"]

    @pytest.mark.parametrize(
        "origin",
        [
            "https://evil.example.com",
            "http://app.example.com",
            "https://app.example.com:8443",
            "https://app.example.com.evil.com",
            "null",
        ],
    )
    def test_preflight_from_other_origin_gets_no_cors_headers(self, anon, widget, origin):
        response = preflight(anon, origin)
        assert "Access-Control-Allow-Origin" not in response.headers
        assert "Access-Control-Allow-Methods" not in response.headers

    @pytest.mark.parametrize(
        "origin",
        ["https://evil.example.com", "http://app.example.com", "https://app.example.com:8443"],
    )
    def test_other_origin_is_403_with_clear_message_and_no_cors_header(self, anon, widget, origin):
        response = browser_post(anon, widget.id, origin=origin)

        assert response.status_code == 403
        assert "Access-Control-Allow-Origin" not in response.headers
        body = response.json()
        assert body["status"] is False
        assert origin in body["message"]
        assert "allowed_origins" in body["message"]
        assert Call.objects.count() == 0

    def test_origin_allowed_for_another_widget_is_403_for_this_one(
        self, anon, widget, make_widget, assistant
    ):
        other = make_widget(assistant=assistant, allowed_origins=["https://shop.example.com"])
        response = browser_post(anon, widget.id, origin="https://shop.example.com")
        assert response.status_code == 403
        assert browser_post(anon, other.id, origin="https://shop.example.com").status_code == 201

    def test_no_origin_and_no_key_is_401(self, anon, widget):
        response = browser_post(anon, widget.id, origin=None)

        assert response.status_code == 401
        assert "WWW-Authenticate" in response.headers
        assert "API key" in response.json()["message"]
        assert Call.objects.count() == 0

    def test_empty_allowed_origins_allows_no_cross_origin_page(self, anon, make_widget, assistant):
        widget = make_widget(assistant=assistant, allowed_origins=[])

        assert preflight(anon, ORIGIN).headers.get("Access-Control-Allow-Origin") is None
        response = browser_post(anon, widget.id)

        assert response.status_code == 403
        assert "Access-Control-Allow-Origin" not in response.headers
        assert Call.objects.count() == 0

    def test_unknown_widget_from_browser_is_404(self, anon, widget):
        response = browser_post(anon, "665e4a34c65bb95f2f2d72e1")
        assert response.status_code == 404
        assert Call.objects.count() == 0

    def test_widget_without_assistant_is_400_saying_so(self, anon, make_widget):
        widget = make_widget(allowed_origins=[ORIGIN])

        response = browser_post(anon, widget.id)

        assert response.status_code == 400
        body = response.json()
        assert "no assistant" in body["message"]
        assert "widget_id" in body["errors"]
        assert Call.objects.count() == 0

    def test_widget_with_disabled_assistant_is_400(self, anon, widget):
        widget.assistant.enabled = False
        widget.assistant.save()

        response = browser_post(anon, widget.id)

        assert response.status_code == 400
        assert "disabled" in response.json()["message"]
        assert Call.objects.count() == 0

    def test_key_holder_gets_400_for_widget_without_assistant_too(self, api, make_widget):
        widget = make_widget()
        response = api.post(CREATE_CALL, {"widget_id": widget.id})
        assert response.status_code == 400
        assert "no assistant" in response.json()["message"]


TERMS = "By continuing, you agree to recording terms."


@pytest.fixture
def terms_widget(make_widget, assistant):
    return make_widget(
        assistant=assistant,
        allowed_origins=[ORIGIN],
        terms_and_condition=True,
        terms_and_condition_content=TERMS,
    )


@pytest.mark.django_db
class TestConsent:
    @pytest.mark.parametrize(
        "extra",
        [{}, {"consent": {"accepted": False}}, {"consent": {}}],
        ids=["missing", "refused", "empty"],
    )
    def test_terms_without_acceptance_is_400_naming_consent(self, anon, terms_widget, extra):
        response = browser_post(anon, terms_widget.id, **extra)

        assert response.status_code == 400
        body = response.json()
        assert "consent" in body["message"]
        assert "consent" in body["errors"]
        assert Call.objects.count() == 0

    def test_terms_with_acceptance_stores_consent_record(self, anon, terms_widget):
        before = timezone.now()
        response = browser_post(anon, terms_widget.id, consent={"accepted": True})

        assert response.status_code == 201, response.content
        call = Call.objects.get(pk=response.json()["call_id"])
        consent = call.consent
        assert set(consent) == {"accepted_at", "origin", "terms_sha256"}
        assert consent["origin"] == ORIGIN
        assert consent["terms_sha256"] == hashlib.sha256(TERMS.encode()).hexdigest()
        accepted_at = dt.datetime.fromisoformat(consent["accepted_at"])
        assert before <= accepted_at <= timezone.now()

    def test_acceptance_with_matching_terms_hash_is_201(self, anon, terms_widget):
        digest = hashlib.sha256(TERMS.encode()).hexdigest()
        response = browser_post(
            anon, terms_widget.id, consent={"accepted": True, "terms_sha256": digest}
        )
        assert response.status_code == 201

    def test_acceptance_of_outdated_terms_is_400(self, anon, terms_widget):
        digest = hashlib.sha256(b"old terms").hexdigest()
        response = browser_post(
            anon, terms_widget.id, consent={"accepted": True, "terms_sha256": digest}
        )
        assert response.status_code == 400
        assert "consent" in response.json()["errors"]
        assert Call.objects.count() == 0

    def test_consent_with_unknown_field_is_400(self, anon, terms_widget):
        response = browser_post(anon, terms_widget.id, consent={"accepted": True, "who": "me"})
        assert response.status_code == 400
        assert "consent" in response.json()["message"]


@pytest.mark.django_db
class TestPublicConfig:
    def test_public_config_returns_appearance_without_private_fields(self, anon, terms_widget):
        response = anon.get(f"/v1/widgets/{terms_widget.id}/public", headers={"Origin": ORIGIN})

        assert response.status_code == 200
        data = response.json()
        assert data["id"] == terms_widget.id
        assert data["background_color"] == terms_widget.background_color
        assert data["button_color"] == terms_widget.button_color
        assert data["card_radius"] == terms_widget.card_radius
        assert data["start_call_button"] == terms_widget.start_call_button
        assert data["terms_and_condition"] is True
        assert data["terms_and_condition_content"] == TERMS
        assert data["terms_sha256"] == hashlib.sha256(TERMS.encode()).hexdigest()
        assert data["available"] is True
        assert data["origin_allowed"] is True
        for private in ("allowed_origins", "assistantId", "organization", "assistant_id"):
            assert private not in data
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN

    def test_public_config_tells_a_foreign_origin_it_is_not_allowed(self, anon, widget):
        response = anon.get(
            f"/v1/widgets/{widget.id}/public", headers={"Origin": "https://evil.example.com"}
        )
        assert response.status_code == 200
        assert response.json()["origin_allowed"] is False

    def test_public_config_available_false_without_enabled_assistant(self, anon, make_widget):
        widget = make_widget(allowed_origins=[ORIGIN])
        data = anon.get(f"/v1/widgets/{widget.id}/public", headers={"Origin": ORIGIN}).json()
        assert data["available"] is False

    def test_public_config_of_unknown_widget_is_404(self, anon, db):
        response = anon.get("/v1/widgets/665e4a34c65bb95f2f2d72e1/public")
        assert response.status_code == 404


@pytest.mark.django_db
class TestRateLimit:
    """create-call is limited to 30 a minute per client address (per key with a key)."""

    @pytest.fixture(autouse=True)
    def _room_for_the_calls(self, settings):
        # 30 queued calls at once: the concurrent-calls limit is not what is tested here.
        settings.MAX_CONCURRENT_CALLS = 100

    def post_from(self, anon, widget, address, **headers):
        return anon.post(
            CREATE_CALL,
            {"widget_id": widget.id},
            headers={"Origin": ORIGIN, **headers},
            REMOTE_ADDR=address,
        )

    def test_31st_browser_call_in_a_minute_is_429_and_others_are_unaffected(self, anon, widget):
        for _ in range(30):
            assert self.post_from(anon, widget, "203.0.113.7").status_code == 201

        limited = self.post_from(anon, widget, "203.0.113.7")
        assert limited.status_code == 429
        assert limited.json()["status"] is False
        assert "Retry-After" in limited.headers
        assert Call.objects.count() == 30
        # A forged X-Forwarded-For does not reset the count (no trusted proxy configured) ...
        spoofed = self.post_from(anon, widget, "203.0.113.7", **{"X-Forwarded-For": "198.51.100.1"})
        assert spoofed.status_code == 429
        # ... while another address still gets through.
        assert self.post_from(anon, widget, "203.0.113.8").status_code == 201

    def test_key_holders_are_limited_per_key(self, make_api, widget):
        first, second = make_api(), make_api()
        for _ in range(30):
            assert first.post(CREATE_CALL, {"widget_id": widget.id}).status_code == 201
        assert first.post(CREATE_CALL, {"widget_id": widget.id}).status_code == 429
        assert second.post(CREATE_CALL, {"widget_id": widget.id}).status_code == 201
