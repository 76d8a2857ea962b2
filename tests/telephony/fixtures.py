"""Fixtures of the telephony tests (`from tests.telephony.fixtures import *`)."""

from __future__ import annotations

import pytest

from telephony.services import phone_number_create, twilio_account_create
from tests.telephony.twilio_fakes import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioAPI

PUBLIC = "https://voice.example.com"
OUR_NUMBER = "+14155550100"
CALLEE = "+14155552671"


@pytest.fixture
def public_base(settings):
    """Twilio reaches this server at PUBLIC (the test client still talks to `testserver`)."""
    settings.PUBLIC_BASE_URL = PUBLIC
    return PUBLIC


@pytest.fixture
def twilio_account(organization):
    return twilio_account_create(
        organization=organization, name="Main", account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN
    )


@pytest.fixture
def phone_number(organization, twilio_account, assistant):
    return phone_number_create(
        organization=organization,
        number=OUR_NUMBER,
        twilio_account=twilio_account,
        assistant=assistant,
    )


@pytest.fixture
def fake_twilio(settings):
    """Twilio's REST API, stood in for on 127.0.0.1; the SDK is pointed at it."""
    with FakeTwilioAPI() as api:
        settings.TWILIO_API_BASE_URL = api.url
        yield api
