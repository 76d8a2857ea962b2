"""Validation table for POST and PATCH /v1/widgets: every bad value is a 400 that names the
field, and nothing is saved."""

from __future__ import annotations

import pytest
from django.forms.models import model_to_dict

from widgets.models import Widget

OTHER_ORG_ASSISTANT = object()  # resolved in the test to an assistant of another organization

BAD_VALUES = [
    # colours: only #RGB / #RRGGBB
    ("background_color", "red"),
    ("text_color", "#12"),
    ("button_color", "#GGGGGG"),
    ("button_text_color", "#FFFFFF; background:url(x)"),
    ("border_color", "#fff}body{"),
    ("focus_outline_color", "rgb(0,0,0)"),
    ("background_color", "expression(alert(1))"),
    ("background_color", 123456),
    ("text_color", {"r": 0, "g": 0, "b": 0}),
    ("button_color", ["#FFFFFF"]),
    ("button_color", None),
    # radii: whole numbers 0-64
    ("card_radius", -1),
    ("card_radius", 65),
    ("button_radius", 10**12),
    ("card_radius", 12.5),
    ("button_radius", 8.0),
    ("card_radius", "12"),
    ("button_radius", True),
    # boolean
    ("terms_and_condition", "true"),
    ("terms_and_condition", 1),
    # origins
    ("allowed_origins", ["https://app.example.com/path"]),
    ("allowed_origins", ["https://app.example.com/"]),
    ("allowed_origins", ["https://*.example.com"]),
    ("allowed_origins", ["*"]),
    ("allowed_origins", ["app.example.com"]),
    ("allowed_origins", ["ftp://app.example.com"]),
    ("allowed_origins", ["https://user:pass@app.example.com"]),
    ("allowed_origins", ["https://app.example.com?x=1"]),
    ("allowed_origins", ["https://app.example.com#top"]),
    ("allowed_origins", ["javascript:alert(1)"]),
    ("allowed_origins", ["https://app.example.com", "https://exa mple.com"]),
    ("allowed_origins", ["https://app.example.com:99999"]),
    ("allowed_origins", ["https://app..example.com"]),
    ("allowed_origins", ["https://-app.example.com"]),
    ("allowed_origins", [""]),
    ("allowed_origins", "https://app.example.com"),
    ("allowed_origins", [42]),
    ("allowed_origins", [f"https://site{i}.example.com" for i in range(51)]),
    # texts: plain, bounded
    ("start_call_button", "x" * 41),
    ("end_call_button", "x" * 41),
    ("call_to_action", "x" * 121),
    ("terms_and_condition_content", "x" * 5001),
    ("start_call_button", ["Start"]),
    ("call_to_action", {"text": "Talk"}),
    ("end_call_button", 7),
    ("start_call_button", "Start\ncall"),
    ("end_call_button", "End\x00call"),
    ("call_to_action", "Talk\x1b[31m to us"),
    ("call_to_action", "Talk\tto us"),
    ("terms_and_condition_content", "Terms\x07 apply"),
    ("terms_and_condition_content", "Terms\x7f apply"),
    # placement and position: one of the choices, as a string
    ("placement", "sidebar"),
    ("placement", "Floating"),
    ("placement", ""),
    ("placement", None),
    ("placement", 1),
    ("placement", ["inline"]),
    ("position", "bottom-center"),
    ("position", "bottom_right"),
    ("position", True),
    ("position", {"corner": "top-left"}),
    # assistant
    ("assistantId", "665e4a34c65bb95f2f2d72e2"),
    ("assistantId", OTHER_ORG_ASSISTANT),
    ("assistantId", 12),
    # unknown fields
    ("colour", "#FFFFFF"),
    ("assistant_id", "665e4a34c65bb95f2f2d72e2"),
    ("id", "665e4a34c65bb95f2f2d72e2"),
]


def case_id(case) -> str:
    field, value = case
    text = "other-org" if value is OTHER_ORG_ASSISTANT else repr(value)
    return f"{field}={text[:30]}"


def snapshot(widget_id: str) -> dict:
    widget = Widget.objects.get(pk=widget_id)
    fields = model_to_dict(widget)
    fields["updated_at"] = widget.updated_at
    fields["origins"] = list(widget.allowed_origins.values_list("origin", "position"))
    return fields


def resolve(value, make_assistant, other_organization):
    if value is OTHER_ORG_ASSISTANT:
        return make_assistant(other_organization).id
    return value


def assert_names_field(response, field: str) -> None:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["status"] is False
    assert field in body["message"], body
    assert field in body["errors"], body


@pytest.fixture
def configured_widget(make_widget, assistant):
    return make_widget(
        assistant=assistant,
        call_to_action="Talk to Sales",
        terms_and_condition=True,
        terms_and_condition_content="Recorded.",
        allowed_origins=["https://app.example.com", "http://localhost:8000"],
    )


@pytest.mark.django_db
@pytest.mark.parametrize("case", BAD_VALUES, ids=[case_id(c) for c in BAD_VALUES])
def test_widget_patch_rejects_invalid_value_naming_field_and_saves_nothing(
    api, configured_widget, make_assistant, other_organization, case
):
    field, value = case
    before = snapshot(configured_widget.id)
    # A valid change next to the bad one must not be saved either.
    body = {"call_to_action": "Changed", field: resolve(value, make_assistant, other_organization)}

    response = api.patch(f"/v1/widgets/{configured_widget.id}", body)

    assert_names_field(response, field)
    assert snapshot(configured_widget.id) == before


@pytest.mark.django_db
@pytest.mark.parametrize("case", BAD_VALUES, ids=[case_id(c) for c in BAD_VALUES])
def test_widget_post_rejects_invalid_value_naming_field_and_creates_nothing(
    api, organization, make_assistant, other_organization, case
):
    field, value = case
    body = {field: resolve(value, make_assistant, other_organization)}

    response = api.post("/v1/widgets", body)

    assert_names_field(response, field)
    assert Widget.objects.count() == 0


@pytest.mark.django_db
def test_widget_patch_rejects_non_object_body(api, configured_widget):
    before = snapshot(configured_widget.id)
    response = api.patch(f"/v1/widgets/{configured_widget.id}", ["#FFFFFF"])
    assert response.status_code == 400
    assert snapshot(configured_widget.id) == before


@pytest.mark.django_db
def test_widget_patch_rejects_malformed_json(api, configured_widget):
    before = snapshot(configured_widget.id)
    response = api.client.patch(
        f"/v1/widgets/{configured_widget.id}",
        data='{"call_to_action": ',
        content_type="application/json",
        headers=api.headers(None),
    )
    assert response.status_code == 400
    assert response.json()["status"] is False
    assert snapshot(configured_widget.id) == before


@pytest.mark.django_db
def test_widget_patch_normalises_origins_and_drops_duplicates(api, configured_widget):
    response = api.patch(
        f"/v1/widgets/{configured_widget.id}",
        {
            "allowed_origins": [
                "HTTPS://App.Example.com:443",
                "http://localhost:8000",
                "https://app.example.com",
                "http://LOCALHOST:8000",
                "http://shop.example.com:80",
                "https://[::1]:8443",
            ]
        },
    )

    assert response.status_code == 200
    expected = [
        "https://app.example.com",
        "http://localhost:8000",
        "http://shop.example.com",
        "https://[::1]:8443",
    ]
    assert response.json()["data"]["allowed_origins"] == expected
    configured_widget.refresh_from_db()
    assert configured_widget.allowed_origin_list == expected


@pytest.mark.django_db
def test_widget_post_normalises_origins(api):
    response = api.post("/v1/widgets", {"allowed_origins": ["HTTPS://App.Example.com:443"]})
    assert response.status_code == 201
    assert response.json()["data"]["allowed_origins"] == ["https://app.example.com"]


@pytest.mark.django_db
def test_widget_patch_accepts_boundary_values(api, configured_widget):
    body = {
        "background_color": "#abc",
        "card_radius": 0,
        "button_radius": 64,
        "start_call_button": "x" * 40,
        "call_to_action": "y" * 120,
        "terms_and_condition_content": "Line one.\nLine two.\n" + "z" * 4980,
        "allowed_origins": [],
    }
    response = api.patch(f"/v1/widgets/{configured_widget.id}", body)
    assert response.status_code == 200, response.content
    configured_widget.refresh_from_db()
    for name, value in body.items():
        if name != "allowed_origins":
            assert getattr(configured_widget, name) == value
    assert configured_widget.allowed_origin_list == []


@pytest.mark.django_db
def test_widget_patch_is_partial_and_keeps_other_fields(api, configured_widget):
    before = snapshot(configured_widget.id)
    response = api.patch(f"/v1/widgets/{configured_widget.id}", {"text_color": "#000000"})
    assert response.status_code == 200
    after = snapshot(configured_widget.id)
    assert after["text_color"] == "#000000"
    for name in ("call_to_action", "assistant", "origins", "terms_and_condition_content"):
        assert after[name] == before[name]


@pytest.mark.django_db
def test_widget_patch_assistant_null_detaches_assistant(api, configured_widget):
    response = api.patch(f"/v1/widgets/{configured_widget.id}", {"assistantId": None})
    assert response.status_code == 200
    assert response.json()["data"]["assistantId"] is None
    configured_widget.refresh_from_db()
    assert configured_widget.assistant_id is None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params, name",
    [({"limit": 101}, "limit"), ({"limit": 0}, "limit"), ({"offset": -1}, "offset")],
)
def test_widget_list_rejects_bad_pagination_naming_parameter(api, params, name):
    response = api.get("/v1/widgets", params)
    assert response.status_code == 400
    assert name in response.json()["message"]
    assert name in response.json()["errors"]


@pytest.mark.django_db
def test_widget_list_paginates(api, make_widget):
    made = [make_widget(call_to_action=f"W{i}") for i in range(3)]
    newest_first = [w.id for w in reversed(made)]
    first = api.get("/v1/widgets", {"limit": 2}).json()
    rest = api.get("/v1/widgets", {"limit": 2, "offset": 2}).json()
    assert first["meta"] == {"total": 3, "limit": 2, "offset": 0}
    assert [w["id"] for w in first["data"] + rest["data"]] == newest_first
