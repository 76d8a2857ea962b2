"""/v1/telephony/twilio-accounts and /v1/phone-numbers: CRUD, validation, organization scoping,
and the auth token never shown (API, admin) nor stored in clear."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.db import connection

from accounts.crypto import decrypt
from accounts.models import Membership
from telephony.models import PhoneNumber, TwilioAccount
from tests.telephony.fixtures import *  # noqa: F403
from tests.telephony.fixtures import OUR_NUMBER, PUBLIC
from tests.telephony.twilio_fakes import ACCOUNT_SID, AUTH_TOKEN, OTHER_SID, OTHER_TOKEN

pytestmark = pytest.mark.django_db
ACCOUNTS = "/v1/telephony/twilio-accounts"
NUMBERS = "/v1/phone-numbers"


def account_body(**changes) -> dict:
    return {"name": "Main", "account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, **changes}


def every_stored_text() -> str:
    texts = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            texts += [str(v) for row in cursor.fetchall() for v in row if v is not None]
    return "\n".join(texts)


# ------------------------------------------------------------------------------ accounts


def test_connecting_an_account_never_returns_or_stores_the_token_in_clear(api):
    response = api.post(ACCOUNTS, account_body())

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert set(data) == {"id", "name", "account_sid", "phone_numbers", "created_at", "updated_at"}
    assert data["account_sid"] == ACCOUNT_SID
    assert AUTH_TOKEN not in response.content.decode()
    account = TwilioAccount.objects.get(pk=data["id"])
    assert decrypt(account.auth_token_encrypted) == AUTH_TOKEN
    assert AUTH_TOKEN not in every_stored_text()
    for read in (api.get(ACCOUNTS), api.get(f"{ACCOUNTS}/{account.id}")):
        assert read.status_code == 200
        assert AUTH_TOKEN not in read.content.decode()
        assert "auth_token" not in json.dumps(read.json()["data"])


@pytest.mark.parametrize(
    "field, value",
    [
        ("account_sid", "AC123"),
        ("account_sid", "AC" + "G" * 32),
        ("account_sid", "SK" + "a" * 32),
        ("account_sid", 42),
        ("auth_token", "short"),
        ("auth_token", "has a space in it 0123456789"),
        ("auth_token", None),
        ("name", ""),
    ],
)
def test_an_invalid_account_is_a_400_naming_the_field(api, field, value):
    response = api.post(ACCOUNTS, account_body(**{field: value}))

    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert not TwilioAccount.objects.exists()


def test_the_same_account_twice_is_a_400(api, twilio_account):
    response = api.post(ACCOUNTS, account_body())

    assert response.status_code == 400 and "account_sid" in response.json()["errors"]


def test_replacing_the_token_stores_the_new_one_and_shows_neither(api, twilio_account):
    response = api.patch(f"{ACCOUNTS}/{twilio_account.id}", {"auth_token": OTHER_TOKEN})

    assert response.status_code == 200
    assert OTHER_TOKEN not in response.content.decode()
    twilio_account.refresh_from_db()
    assert decrypt(twilio_account.auth_token_encrypted) == OTHER_TOKEN


def test_an_account_with_numbers_cannot_be_deleted(api, twilio_account, phone_number):
    response = api.delete(f"{ACCOUNTS}/{twilio_account.id}")

    assert response.status_code == 409
    assert TwilioAccount.objects.filter(pk=twilio_account.pk).exists()
    assert api.delete(f"{NUMBERS}/{phone_number.id}").status_code == 200
    assert api.delete(f"{ACCOUNTS}/{twilio_account.id}").status_code == 200
    assert not TwilioAccount.objects.exists()


def test_another_organizations_account_is_a_404(other_api, twilio_account):
    path = f"{ACCOUNTS}/{twilio_account.id}"

    assert other_api.get(path).status_code == 404
    assert other_api.patch(path, {"name": "Mine"}).status_code == 404
    assert other_api.delete(path).status_code == 404
    assert other_api.get(ACCOUNTS).json()["data"] == []
    assert TwilioAccount.objects.get(pk=twilio_account.pk).name == "Main"


def test_two_organizations_may_connect_the_same_account(other_api, twilio_account):
    assert other_api.post(ACCOUNTS, account_body()).status_code == 201


# ------------------------------------------------------------------------------ numbers


def number_body(twilio_account, assistant, **changes) -> dict:
    return {
        "number": OUR_NUMBER,
        "twilio_account_id": twilio_account.id,
        "assistant_id": assistant.id,
        **changes,
    }


def test_registering_a_number(api, public_base, twilio_account, assistant):
    response = api.post(NUMBERS, number_body(twilio_account, assistant, name="Front desk"))

    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data == {
        "id": data["id"],
        "number": OUR_NUMBER,
        "name": "Front desk",
        "provider": "twilio",
        "twilio_account_id": twilio_account.id,
        "assistant_id": assistant.id,
        "voice_webhook_url": f"{PUBLIC}/v1/telephony/twilio/voice",
        "status_callback_url": f"{PUBLIC}/v1/telephony/twilio/status",
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
    }
    assert api.get(f"{NUMBERS}/{data['id']}").json()["data"] == data
    assert [n["id"] for n in api.get(NUMBERS).json()["data"]] == [data["id"]]


@pytest.mark.parametrize(
    "number", ["4155550100", "+0415555010", "+1 415 555 0100", "+1" + "5" * 15]
)
def test_a_number_that_is_not_e164_is_a_400(api, twilio_account, assistant, number):
    response = api.post(NUMBERS, number_body(twilio_account, assistant, number=number))

    assert response.status_code == 400
    assert "number" in response.json()["errors"]


@pytest.mark.parametrize("provider", ["vonage", "telnyx", 3])
def test_only_twilio_numbers_are_taken(api, twilio_account, assistant, provider):
    response = api.post(NUMBERS, number_body(twilio_account, assistant, provider=provider))

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["provider"]


def test_a_number_is_registered_once(api, other_api, phone_number, assistant, twilio_account):
    again = api.post(NUMBERS, number_body(twilio_account, assistant))

    assert again.status_code == 400 and "number" in again.json()["errors"]
    assert PhoneNumber.objects.count() == 1


def test_another_organizations_account_or_assistant_is_a_404(
    api, twilio_account, assistant, make_assistant, other_organization
):
    theirs = make_assistant(other_organization)
    their_account = TwilioAccount.objects.create(
        organization=other_organization, name="B", account_sid=OTHER_SID, auth_token_encrypted="x"
    )

    wrong_assistant = api.post(NUMBERS, number_body(twilio_account, theirs))
    wrong_account = api.post(NUMBERS, number_body(their_account, assistant))

    assert wrong_assistant.status_code == wrong_account.status_code == 404
    assert not PhoneNumber.objects.exists()


def test_another_organizations_number_is_a_404(other_api, phone_number):
    path = f"{NUMBERS}/{phone_number.id}"

    assert other_api.get(path).status_code == 404
    assert other_api.patch(path, {"name": "Mine"}).status_code == 404
    assert other_api.delete(path).status_code == 404
    assert other_api.get(NUMBERS).json()["data"] == []
    assert PhoneNumber.objects.get(pk=phone_number.pk).name == ""


def test_updating_a_number(api, phone_number, make_assistant):
    other = make_assistant(name="Sales")

    moved = api.patch(f"{NUMBERS}/{phone_number.id}", {"assistant_id": other.id, "name": "Sales"})
    unassigned = api.patch(f"{NUMBERS}/{phone_number.id}", {"assistant_id": None})

    assert moved.status_code == 200 and moved.json()["data"]["assistant_id"] == other.id
    assert unassigned.status_code == 200 and unassigned.json()["data"]["assistant_id"] is None
    phone_number.refresh_from_db()
    assert (phone_number.name, phone_number.assistant) == ("Sales", None)


def test_deleting_an_assistant_leaves_its_number_unanswered(api, phone_number, assistant):
    assert api.delete(f"/v1/assistants/{assistant.id}").status_code == 200

    phone_number.refresh_from_db()
    assert phone_number.assistant is None


def test_the_phone_number_scopes_guard_the_endpoints(make_api, phone_number):
    reader = make_api(scopes=["phone_numbers:read"])
    nobody = make_api(scopes=["calls:read", "calls:write"])

    assert reader.get(NUMBERS).status_code == 200
    assert reader.get(ACCOUNTS).status_code == 200
    assert reader.patch(f"{NUMBERS}/{phone_number.id}", {"name": "x"}).status_code == 403
    assert nobody.get(NUMBERS).status_code == 403
    assert "phone_numbers:read" in nobody.get(ACCOUNTS).json()["message"]


# ------------------------------------------------------------------------------ admin


@pytest.fixture
def staff_client(client, organization):
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    Membership.objects.create(user=user, organization=organization)
    from django.contrib.auth.models import Permission

    user.user_permissions.set(Permission.objects.filter(content_type__app_label="telephony"))
    client.force_login(user)
    return client


def test_the_admin_never_shows_the_token(admin_client, twilio_account, phone_number):
    pages = [
        "/admin/telephony/twilioaccount/",
        f"/admin/telephony/twilioaccount/{twilio_account.pk}/change/",
        "/admin/telephony/twilioaccount/add/",
        "/admin/telephony/phonenumber/",
        f"/admin/telephony/phonenumber/{phone_number.pk}/change/",
        "/admin/telephony/twiliocall/",
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        assert AUTH_TOKEN not in html
        assert twilio_account.auth_token_encrypted not in html


def test_connecting_an_account_in_the_admin_encrypts_the_token(staff_client, organization):
    response = staff_client.post(
        "/admin/telephony/twilioaccount/add/",
        {
            "organization": organization.pk,
            "name": "From admin",
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    account = TwilioAccount.objects.get(name="From admin")
    assert decrypt(account.auth_token_encrypted) == AUTH_TOKEN
    # Saving it again with the token left blank keeps the stored one.
    staff_client.post(
        f"/admin/telephony/twilioaccount/{account.pk}/change/",
        {"organization": organization.pk, "name": "Renamed", "account_sid": ACCOUNT_SID},
    )
    account.refresh_from_db()
    assert (account.name, decrypt(account.auth_token_encrypted)) == ("Renamed", AUTH_TOKEN)


def test_staff_see_only_their_organizations_numbers(
    staff_client, phone_number, other_organization, make_assistant
):
    theirs_account = TwilioAccount.objects.create(
        organization=other_organization, name="B", account_sid=OTHER_SID, auth_token_encrypted="x"
    )
    theirs = PhoneNumber.objects.create(
        organization=other_organization,
        number="+14155550111",
        twilio_account=theirs_account,
        assistant=make_assistant(other_organization),
    )

    listing = staff_client.get("/admin/telephony/phonenumber/").content.decode()

    assert phone_number.number in listing and theirs.number not in listing
    assert staff_client.get(f"/admin/telephony/phonenumber/{theirs.pk}/change/").status_code == 302
