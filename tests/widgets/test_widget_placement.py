"""Placement and position of a widget (issue 12): API, public configuration, the migration
that keeps existing widgets inline, and the admin form's choices."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from widgets.admin import WidgetForm
from widgets.models import Placement, Position, Widget


@pytest.mark.django_db
def test_new_widget_floats_bottom_right(api):
    data = api.post("/v1/widgets").json()["data"]
    assert data["placement"] == "floating"
    assert data["position"] == "bottom-right"


@pytest.mark.django_db
@pytest.mark.parametrize("placement", Placement.values)
@pytest.mark.parametrize("position", Position.values)
def test_every_placement_and_position_is_saved_and_public(api, anon, widget, placement, position):
    response = api.patch(f"/v1/widgets/{widget.id}", {"placement": placement, "position": position})
    assert response.status_code == 200, response.content
    assert response.json()["data"]["placement"] == placement
    widget.refresh_from_db()
    assert (widget.placement, widget.position) == (placement, position)
    public = anon.get(f"/v1/widgets/{widget.id}/public").json()
    assert (public["placement"], public["position"]) == (placement, position)


@pytest.mark.django_db
def test_bad_placement_names_the_field_and_lists_the_choices(api, widget):
    response = api.patch(f"/v1/widgets/{widget.id}", {"placement": "sidebar"})
    assert response.status_code == 400
    assert response.json()["errors"]["placement"] == ["Must be one of: floating, inline."]
    response = api.patch(f"/v1/widgets/{widget.id}", {"position": "middle"})
    assert response.status_code == 400
    assert "bottom-right" in response.json()["errors"]["position"][0]


@pytest.mark.django_db
def test_admin_form_offers_the_same_choices(widget):
    form = WidgetForm(instance=widget)
    assert [v for v, _ in form.fields["placement"].choices if v] == Placement.values
    assert [v for v, _ in form.fields["position"].choices if v] == Position.values


@pytest.mark.django_db(transaction=True)
def test_migration_keeps_existing_widgets_inline():
    executor = MigrationExecutor(connection)
    executor.migrate([("widgets", "0001_initial")])
    try:
        old = executor.loader.project_state([("widgets", "0001_initial")]).apps
        org = old.get_model("accounts", "Organization").objects.create(name="Old org")
        old.get_model("widgets", "Widget").objects.create(id="a" * 24, organization_id=org.pk)
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    existing = Widget.objects.get(pk="a" * 24)
    assert (existing.placement, existing.position) == ("inline", "bottom-right")
    assert Widget(organization_id=existing.organization_id).placement == "floating"


def form_data(widget, **changes) -> dict:
    from django.forms.models import model_to_dict

    from widgets.serializers import APPEARANCE_FIELDS

    data = model_to_dict(widget, fields=["organization", "assistant", *APPEARANCE_FIELDS])
    data = {k: v for k, v in data.items() if v is not None}
    data.update(changes)
    if not data.get("terms_and_condition"):
        data.pop("terms_and_condition", None)  # an unticked box is absent from a POST
    return data


# Values an admin form can send (strings) that the API refuses: the form refuses them too.
FORM_BAD_VALUES = [
    ("background_color", "red"),
    ("button_color", "#fff}body{"),
    ("start_call_button", "Start\ncall"),
    ("call_to_action", "Talk\tto us"),
    ("call_to_action", "x" * 121),
    ("terms_and_condition_content", "Terms\x07 apply"),
    ("placement", "sidebar"),
    ("position", "middle"),
    ("card_radius", "65"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("field, value", FORM_BAD_VALUES)
def test_admin_form_refuses_what_the_api_refuses(api, widget, field, value):
    form = WidgetForm(data=form_data(widget, **{field: value}), instance=widget)
    assert not form.is_valid()
    assert field in form.errors, form.errors
    api_value = int(value) if field == "card_radius" else value
    response = api.patch(f"/v1/widgets/{widget.id}", {field: api_value})
    assert response.status_code == 400 and field in response.json()["errors"]


@pytest.mark.django_db
def test_windows_line_endings_in_terms_are_normalised_by_api_and_admin(api, widget):
    crlf = "Line one.\r\nLine two.\rLine three."
    response = api.patch(f"/v1/widgets/{widget.id}", {"terms_and_condition_content": crlf})
    assert response.status_code == 200, response.content
    assert response.json()["data"]["terms_and_condition_content"] == (
        "Line one.\nLine two.\nLine three."
    )
    form = WidgetForm(
        data=form_data(widget, terms_and_condition_content="A.\r\nB.", placement="floating"),
        instance=widget,
    )
    assert form.is_valid(), form.errors
    saved = form.save()
    assert saved.terms_and_condition_content == "A.\nB."
    assert saved.placement == "floating"


@pytest.mark.django_db
def test_public_config_carries_the_assistants_language(anon, widget):
    widget.assistant.language = "de"
    widget.assistant.save()
    public = anon.get(f"/v1/widgets/{widget.id}/public").json()
    assert public["language"] == "de"
