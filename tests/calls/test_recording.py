"""GET /v1/calls/{id}/recording: calls:read, organization-scoped, HTTP range requests."""

from __future__ import annotations

import pytest

from accounts.models import Scope

WAV = b"RIFF" + bytes(range(256)) * 4  # 1028 bytes of stand-in audio


@pytest.fixture
def recorded_call(make_call, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "recordings").mkdir()
    call = make_call(status="completed")
    (tmp_path / "recordings" / f"{call.id}.wav").write_bytes(WAV)
    call.recording.name = f"recordings/{call.id}.wav"
    call.save()
    return call


def test_recording_downloads_whole_with_accept_ranges(api, recorded_call):
    response = api.get(f"/v1/calls/{recorded_call.id}/recording")
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert response["Accept-Ranges"] == "bytes"
    assert int(response["Content-Length"]) == len(WAV)
    assert b"".join(response.streaming_content) == WAV


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, 1027),
        ("bytes=-28", 1000, 1027),
        ("bytes=1020-5000", 1020, 1027),
    ],
)
def test_recording_serves_byte_ranges(api, recorded_call, header, first, last):
    response = api.get(f"/v1/calls/{recorded_call.id}/recording", headers={"Range": header})
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(WAV)}"
    assert response.content == WAV[first : last + 1]


@pytest.mark.parametrize("header", ["bytes=2000-", "bytes=-0", "bytes=50-10"])
def test_recording_refuses_unsatisfiable_ranges_with_416(api, recorded_call, header):
    response = api.get(f"/v1/calls/{recorded_call.id}/recording", headers={"Range": header})
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(WAV)}"


def test_recording_of_a_call_without_one_is_404(api, make_call):
    call = make_call()
    response = api.get(f"/v1/calls/{call.id}/recording")
    assert response.status_code == 404
    assert response.json()["status"] is False


def test_recording_needs_calls_read_and_the_same_organization(make_api, other_api, recorded_call):
    without_scope = make_api(scopes=[s for s in Scope.values if s != "calls:read"])
    response = without_scope.get(f"/v1/calls/{recorded_call.id}/recording")
    assert response.status_code == 403 and "calls:read" in response.json()["message"]
    assert other_api.get(f"/v1/calls/{recorded_call.id}/recording").status_code == 404
