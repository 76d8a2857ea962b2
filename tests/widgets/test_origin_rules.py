"""Which pages may call a widget: only its allowed_origins. The server's own origin has no
exemption; the admin's live preview is authorised by a staff session of the widget's
organization (CSRF-checked) instead, and its call socket accepts only that page's origin.
The demo page hosts only the demo organization's widgets (any widget with DJANGO_DEBUG)."""

from __future__ import annotations

import json
import re

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from accounts.models import Membership
from calls.models import Call
from calls.services import call_create
from widgets.views_pages import DEMO_ORGANIZATION
from widgetsite.routing import websocket_urlpatterns

OWN = "http://testserver"  # what Django's test client is, as an origin
ORIGIN = "https://app.example.com"
CREATE_CALL = "/v1/widgets/create-call"


def browser_post(client: Client, widget_id: str, origin: str, **headers):
    return client.post(
        CREATE_CALL,
        json.dumps({"widget_id": widget_id}),
        content_type="application/json",
        headers={"Origin": origin, **headers},
    )


@pytest.fixture
def closed_widget(make_widget, assistant):
    """A widget that allows no page at all."""
    return make_widget(assistant=assistant, allowed_origins=[])


def make_user(organization=None, *, staff=True, superuser=False, name="staff"):
    user = get_user_model().objects.create_user(
        name, password="unused-in-tests", is_staff=staff, is_superuser=superuser
    )
    user.user_permissions.add(*Permission.objects.filter(codename__endswith="_widget"))
    if organization is not None:
        Membership.objects.create(user=user, organization=organization)
    return user


def session_client(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def preview_csrf_token(client: Client, widget) -> str:
    """The token the admin's change page hands its live preview (json_script `preview-call`)."""
    page = client.get(f"/admin/widgets/widget/{widget.id}/change/")
    assert page.status_code == 200
    match = re.search(
        r'<script id="preview-call" type="application/json">(.*?)</script>', page.content.decode()
    )
    assert match, "the change page hands the preview no call settings"
    settings = json.loads(match.group(1))
    assert settings["widgetId"] == widget.id
    return settings["csrfToken"]


def admin_csrf_token(client: Client) -> str:
    assert client.get("/admin/").status_code == 200
    return client.cookies["csrftoken"].value


@pytest.mark.django_db
class TestOwnOriginHasNoExemption:
    def test_own_origin_is_refused_for_a_widget_that_allows_no_origin(self, anon, closed_widget):
        response = browser_post(anon.client, closed_widget.id, OWN)

        assert response.status_code == 403
        assert "allowed_origins" in response.json()["message"]
        assert Call.objects.count() == 0

    def test_own_origin_is_refused_for_a_widget_that_allows_other_origins(self, anon, widget):
        assert browser_post(anon.client, widget.id, OWN).status_code == 403
        assert browser_post(anon.client, widget.id, ORIGIN).status_code == 201

    def test_public_config_tells_the_own_origin_it_may_not_call(self, anon, closed_widget):
        response = anon.get(f"/v1/widgets/{closed_widget.id}/public", headers={"Origin": OWN})
        assert response.json()["origin_allowed"] is False

    def test_a_widget_that_lists_the_own_origin_allows_it_like_any_other(
        self, anon, make_widget, assistant
    ):
        widget = make_widget(assistant=assistant, allowed_origins=[OWN])
        assert browser_post(anon.client, widget.id, OWN).status_code == 201


@pytest.mark.django_db
class TestStaffPreview:
    def test_staff_of_the_owning_organization_calls_from_the_own_origin(
        self, organization, closed_widget
    ):
        client = session_client(make_user(organization))
        token = preview_csrf_token(client, closed_widget)

        response = browser_post(client, closed_widget.id, OWN, **{"X-CSRFToken": token})

        assert response.status_code == 201, response.content
        call = Call.objects.get(pk=response.json()["call_id"])
        assert call.origin == OWN and call.widget_id == closed_widget.id

    def test_superuser_calls_any_organizations_widget(self, closed_widget):
        client = session_client(make_user(superuser=True))
        token = preview_csrf_token(client, closed_widget)
        response = browser_post(client, closed_widget.id, OWN, **{"X-CSRFToken": token})
        assert response.status_code == 201, response.content

    def test_the_session_without_its_csrf_token_is_refused(self, organization, closed_widget):
        client = session_client(make_user(organization))
        preview_csrf_token(client, closed_widget)  # the cookie is set; the header is missing

        response = browser_post(client, closed_widget.id, OWN)

        assert response.status_code == 403
        assert "CSRF" in response.json()["message"]
        assert Call.objects.count() == 0

    def test_staff_of_another_organization_is_refused(self, other_organization, closed_widget):
        client = session_client(make_user(other_organization))
        token = admin_csrf_token(client)

        response = browser_post(client, closed_widget.id, OWN, **{"X-CSRFToken": token})

        assert response.status_code in (403, 404)
        assert Call.objects.count() == 0

    def test_a_signed_in_user_who_is_not_staff_is_anonymous(self, organization, closed_widget):
        client = session_client(make_user(organization, staff=False))
        response = browser_post(client, closed_widget.id, OWN)
        assert response.status_code == 403
        assert Call.objects.count() == 0

    def test_the_staff_session_allows_only_the_servers_own_origin(
        self, organization, closed_widget
    ):
        client = session_client(make_user(organization))
        token = preview_csrf_token(client, closed_widget)

        response = browser_post(
            client, closed_widget.id, "https://evil.example", **{"X-CSRFToken": token}
        )

        assert response.status_code == 403
        assert Call.objects.count() == 0


APP = URLRouter(websocket_urlpatterns)


async def socket_outcome(call: Call, token: str, origin: str) -> str:
    """'accepted', or the close code the call socket refused with."""
    path = (
        f"/new-web-call/connection?assistant_id={call.assistant_id}&call_id={call.id}&token={token}"
    )
    headers = [(b"origin", origin.encode()), (b"host", b"testserver")]
    communicator = WebsocketCommunicator(APP, path, headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    message = json.loads(await communicator.receive_from())
    await communicator.disconnect()
    return "accepted" if message["type"] == "webrtc.config" else str(message["code"])


@pytest.mark.django_db(transaction=True)
class TestCallSocket:
    @pytest.fixture
    def preview_call(self, organization, closed_widget):
        client = session_client(make_user(organization))
        token = preview_csrf_token(client, closed_widget)
        body = browser_post(client, closed_widget.id, OWN, **{"X-CSRFToken": token}).json()
        return Call.objects.get(pk=body["call_id"]), body["gateway"]["url"].rsplit("token=", 1)[1]

    async def test_a_preview_call_is_joined_from_the_own_origin(self, preview_call):
        call, token = preview_call
        assert await socket_outcome(call, token, OWN) == "accepted"

    @pytest.mark.parametrize("origin", ["https://evil.example", ORIGIN])
    async def test_a_preview_call_is_refused_from_any_other_origin(self, preview_call, origin):
        call, token = preview_call
        assert await socket_outcome(call, token, origin) == "4403"

    async def test_a_keyed_call_of_a_widget_is_refused_from_the_own_origin(
        self, organization, closed_widget
    ):
        from channels.db import database_sync_to_async

        call, token = await database_sync_to_async(call_create)(
            organization=organization, assistant=closed_widget.assistant, widget=closed_widget
        )
        assert await socket_outcome(call, token, OWN) == "4403"


@pytest.mark.django_db
class TestDemoPage:
    @pytest.fixture
    def demo_widget(self, make_organization, make_widget):
        return make_widget(make_organization(DEMO_ORGANIZATION), allowed_origins=[OWN])

    def test_a_demo_widget_is_served(self, client, demo_widget):
        response = client.get("/demo/", {"widget": demo_widget.id})
        assert response.status_code == 200
        assert f'data-widget-id="{demo_widget.id}"' in response.content.decode()

    def test_without_a_widget_the_first_demo_widget_is_served(self, client, demo_widget, widget):
        response = client.get("/demo/")
        assert response.status_code == 200
        assert f'data-widget-id="{demo_widget.id}"' in response.content.decode()

    @pytest.mark.parametrize("bad", ["none", "665E4A34C65BB95F2F2D72E1", "x\x00"])
    def test_a_malformed_widget_id_is_404(self, client, demo_widget, bad):
        assert client.get("/demo/", {"widget": bad}).status_code in (400, 404)

    def test_another_organizations_widget_is_404(self, client, demo_widget, widget):
        assert client.get("/demo/", {"widget": widget.id}).status_code == 404

    def test_with_debug_any_widget_is_served(self, client, settings, widget):
        settings.DEBUG = True
        response = client.get("/demo/", {"widget": widget.id})
        assert response.status_code == 200
        assert f'data-widget-id="{widget.id}"' in response.content.decode()
