"""The calls' periodic jobs, run by the job worker (`python manage.py worker`)."""

from __future__ import annotations

from calls.reaper import reap_once

REAP_EVERY_SECONDS = 30


def reap_calls() -> int:
    """End calls whose process is gone and calls nobody ever connected to (see the reaper)."""
    return reap_once()
