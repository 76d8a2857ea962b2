"""Fixtures of the webhook tests, imported by each module (a conftest.py here would shadow
tests/voice's `conftest` module, which its tests import by that name).

Webhook tests send to receivers on 127.0.0.1 over http: allowed here (production refuses
both); the guard tests switch private networks off again."""

from __future__ import annotations

import pytest

from webhooks.services import endpoint_create

__all__ = ["loopback_webhooks", "make_endpoint"]


@pytest.fixture(autouse=True)
def loopback_webhooks(settings):
    settings.WEBHOOK_ALLOW_HTTP = True
    settings.WEBHOOK_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def make_endpoint(db, organization):
    """(endpoint, secret) for a URL, in `organization` unless told otherwise."""

    def make(url: str, org=None, **data):
        return endpoint_create(organization=org or organization, url=url, **data)

    return make
