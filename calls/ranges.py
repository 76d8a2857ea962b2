"""HTTP range requests (RFC 9110 single byte ranges) for recordings, so players can seek."""

from __future__ import annotations

import re

RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive for a satisfiable single range; None for no/ignored range.

    Raises ValueError for an unsatisfiable one (answer 416).
    """
    match = RANGE_RE.match(header.strip()) if header else None
    if match is None:
        return None
    first_s, last_s = match.groups()
    if not first_s and not last_s:
        return None
    if not first_s:  # suffix range: the last N bytes
        length = int(last_s)
        if length == 0 or size == 0:
            raise ValueError("unsatisfiable")
        return max(0, size - length), size - 1
    first = int(first_s)
    last = min(int(last_s), size - 1) if last_s else size - 1
    if first >= size or (last_s and int(last_s) < first):
        raise ValueError("unsatisfiable")
    return first, last


def recording_response(recording, range_header: str, filename: str):
    """A stored recording (a FieldFile) as a 200, a 206 for one byte range, or a 416.

    Shared by the API (`calls.views.CallRecordingView`) and the admin console; raises OSError
    when the file is missing, which each caller turns into its own 404."""
    from django.http import FileResponse, HttpResponse

    handle = recording.open("rb")
    size = recording.size
    try:
        byte_range = parse_range(range_header, size)
    except ValueError:
        handle.close()
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    if byte_range is None:
        response = FileResponse(handle, content_type="audio/wav")
        response["Content-Length"] = str(size)
    else:
        first, last = byte_range
        handle.seek(first)
        data = handle.read(last - first + 1)
        handle.close()
        response = HttpResponse(data, status=206, content_type="audio/wav")
        response["Content-Range"] = f"bytes {first}-{last}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response
