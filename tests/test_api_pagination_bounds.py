"""Pagination parameters out of any database's integer range are a 400 naming them, not a 500
(found by fuzzing the OpenAPI schema with schemathesis)."""

from __future__ import annotations

import pytest

HUGE = "3364989959403087539348701184"


@pytest.mark.parametrize("path", ["/v1/assistants", "/v1/widgets", "/v1/calls"])
@pytest.mark.parametrize("param", ["offset", "limit"])
def test_list_refuses_huge_pagination_values(api, path, param):
    response = api.get(path, {param: HUGE})
    assert response.status_code == 400
    assert param in response.json()["message"]


@pytest.mark.parametrize("path", ["/v1/assistants", "/v1/widgets", "/v1/calls"])
def test_list_accepts_the_largest_offset(api, path):
    response = api.get(path, {"offset": 2**31 - 1})
    assert response.status_code == 200
    assert response.json()["data"] == []
