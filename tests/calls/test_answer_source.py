"""Which knowledge entry each answer came from: stored with the transcript line, returned by
the API and shown to staff in the call review console."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from calls import services

pytestmark = pytest.mark.django_db

SOURCE = {
    "kind": "answer",
    "entry": 2,
    "question": "Do you service electric bikes?",
    "score": 0.69,
    "runner_up": 4,
    "runner_up_score": 0.27,
    "runner_up_question": "Do you rent bikes?",
}


def test_the_source_is_stored_returned_and_shown(api, make_call, client):
    call = make_call(status="completed")
    services.transcript_append(call_id=call.id, role="user", text="Can you fix my e bike?")
    services.transcript_append(
        call_id=call.id, role="assistant", text="Yes, all brands.", source=SOURCE
    )
    services.transcript_append(
        call_id=call.id, role="assistant", text="Sorry.", source={"kind": "decline", "score": 0.2}
    )
    lines = api.get(f"/v1/calls/{call.id}/transcripts").json()["data"]["transcripts"]
    assert [line["source"] for line in lines] == [None, SOURCE, {"kind": "decline", "score": 0.2}]

    staff = get_user_model().objects.create_superuser("root", "root@example.com", "pw-1234567")
    client.force_login(staff)
    page = client.get(f"/admin/calls/call/{call.id}/change/").content.decode()
    assert "from the entry “Do you service electric bikes?”, score 0.69" in page
    assert "runner-up “Do you rent bikes?” at 0.27" in page
    assert "no entry fitted (best score 0.20)" in page


def test_a_source_that_is_not_an_object_is_not_stored(make_call):
    call = make_call(status="completed")
    entry = services.transcript_append(
        call_id=call.id, role="assistant", text="Hi.", source=["not", "a", "dict"]
    )
    entry.refresh_from_db()
    assert entry.source is None
