"""Ends the calls no process will end (see `calls.services.calls_reap_orphans`).

A call's runtime writes a heartbeat every 10 s, and the claim stamps one: an `in_progress`
call without one for 30 s, or a call connected without a hello whose claim is 30 s old (a
live process ends it after 10 s), belongs to a process that died or restarted, and is marked
failed with `server_restart`. A queued call whose token expired unused (plus a grace) is
marked failed with `never_connected`. Works the same with several workers: a live worker's
calls keep fresh heartbeats.
"""

from __future__ import annotations

import logging

from django.db import close_old_connections
from django.db.utils import DatabaseError

from calls.services import calls_reap_orphans

logger = logging.getLogger(__name__)


def reap_once() -> int:
    try:
        count = calls_reap_orphans()
    except (DatabaseError, RuntimeError) as exc:  # not migrated yet; no database access here
        logger.warning("call reaper skipped: %s", exc)
        return 0
    finally:
        close_old_connections()
    if count:
        logger.warning("ended %d orphaned call(s) as failed", count)
    return count
