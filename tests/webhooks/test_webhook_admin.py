"""The webhooks admin: endpoints without their secret, disabled reasons, the delivery log,
and staff who see only their organization's."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User

from accounts.models import Membership
from tests.webhooks.fixtures import *  # noqa: F403 (the fixtures: see that module)
from tests.webhooks.receiver import Answer, Receiver
from webhooks.delivery import deliver
from webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webhooks.services import endpoint_send_test

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(User.objects.create(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def staff_client(client, organization):
    user = User.objects.create(username="staff", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            codename__in=[
                "view_webhookendpoint",
                "change_webhookendpoint",
                "view_webhookdelivery",
                "change_webhookdelivery",
            ]
        )
    )
    Membership.objects.create(user=user, organization=organization)
    client.force_login(user)
    return client


def failed_delivery(endpoint: WebhookEndpoint) -> WebhookDelivery:
    with Receiver() as receiver:
        receiver.answer(Answer(400, body=b"no thanks"))
        endpoint.url = receiver.url
        endpoint.save()
        delivery = endpoint_send_test(endpoint=endpoint)
        deliver(delivery.id)
    return delivery


def test_endpoint_pages_render_without_the_secret_and_show_the_disabled_reason(
    admin_client, make_endpoint
):
    endpoint, secret = make_endpoint("https://hooks.example.com/in", description="CRM")
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=False, disabled_reason="The receiver answered 410 Gone."
    )
    endpoint.refresh_from_db()

    changelist = admin_client.get("/admin/webhooks/webhookendpoint/")
    change = admin_client.get(f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/")

    assert changelist.status_code == change.status_code == 200
    for page in (changelist, change):
        content = page.content.decode()
        assert "The receiver answered 410 Gone." in content
        assert secret not in content and secret.removeprefix("whsec_") not in content
        assert endpoint.secret_encrypted not in content
    assert "hidden: shown once" in change.content.decode()
    assert admin_client.get("/admin/webhooks/webhookendpoint/add/").status_code == 403


def test_endpoint_page_links_to_its_filtered_delivery_log(admin_client, make_endpoint):
    mine, _ = make_endpoint("https://a.example.com/in")
    other, _ = make_endpoint("https://b.example.com/in")
    delivery = failed_delivery(mine)
    other_delivery = endpoint_send_test(endpoint=other)

    change = admin_client.get(f"/admin/webhooks/webhookendpoint/{mine.pk}/change/")
    link = f"/admin/webhooks/webhookdelivery/?endpoint__id__exact={mine.pk}"
    assert link in change.content.decode()
    log = admin_client.get(link).content.decode()
    assert delivery.id in log and other_delivery.id not in log

    page = admin_client.get(f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/")
    assert page.status_code == 200
    content = page.content.decode()
    assert "no thanks" in content  # the attempt's answer, inline
    assert "HTTP 400" in content


def test_enabling_in_the_admin_clears_the_disabled_reason(admin_client, make_endpoint):
    endpoint, _ = make_endpoint("https://hooks.example.com/in", events=["call.ended"])
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=False, disabled_reason="Every delivery failed for 5 days."
    )

    response = admin_client.post(
        f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/",
        {
            "url": "https://hooks.example.com/in",
            "description": "",
            "events": ["call.ended"],
            "enabled": "on",
        },
    )

    assert response.status_code == 302, response.content.decode()[-2000:]
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_reason == ""


def test_admin_form_refuses_a_bad_url(admin_client, make_endpoint, settings):
    endpoint, _ = make_endpoint("https://hooks.example.com/in")
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = False

    response = admin_client.post(
        f"/admin/webhooks/webhookendpoint/{endpoint.pk}/change/",
        {"url": "https://10.0.0.1/in", "description": "", "events": ["*"], "enabled": "on"},
    )

    assert response.status_code == 200
    assert "a private address" in response.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.url == "https://hooks.example.com/in"


def test_replay_action_requeues_selected_deliveries(admin_client, make_endpoint):
    endpoint, _ = make_endpoint("https://hooks.example.com/in")
    delivery = failed_delivery(endpoint)

    response = admin_client.post(
        "/admin/webhooks/webhookdelivery/",
        {"action": "replay", "_selected_action": [delivery.pk]},
    )

    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.next_attempt_at is not None


@pytest.mark.parametrize(
    "path", ["/admin/webhooks/webhookendpoint/", "/admin/webhooks/webhookdelivery/"]
)
def test_staff_see_only_their_organizations_endpoints_and_deliveries(
    staff_client, make_endpoint, other_organization, path
):
    mine, _ = make_endpoint("https://mine.example.com/in")
    theirs, _ = make_endpoint("https://theirs.example.com/in", org=other_organization)
    my_delivery = endpoint_send_test(endpoint=mine)
    their_delivery = endpoint_send_test(endpoint=theirs)

    content = staff_client.get(path).content.decode()

    assert "mine.example.com" in content or my_delivery.id in content
    assert "theirs.example.com" not in content and their_delivery.id not in content
    for url in (
        f"/admin/webhooks/webhookendpoint/{theirs.pk}/change/",
        f"/admin/webhooks/webhookdelivery/{their_delivery.pk}/change/",
    ):
        assert staff_client.get(url).status_code in (302, 404)
    assert staff_client.get(f"/admin/webhooks/webhookendpoint/{mine.pk}/change/").status_code == (
        200
    )
