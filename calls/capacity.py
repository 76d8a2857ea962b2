"""How many calls this process carries, against MAX_CONCURRENT_CALLS.

Speech runs on this process's CPU, so the limit is per process: a call counts from the
moment it is created here (its single-use token may still be used, and its socket most
likely lands here) until its runtime stops. Over the limit, create-call and initiate answer
503 with Retry-After, and a hello on this process is refused with 4503 (the socket of a call
created on another process may land here).

Created calls are remembered by id and checked against the database when counted, so a call
that was claimed (its runtime counts instead), ended, deleted or whose token expired stops
counting without anyone having to tell this module.
"""

from __future__ import annotations

import threading
from datetime import datetime

from django.conf import settings
from django.db.models.signals import post_save
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import APIException

from calls.models import Call
from calls.vocabulary import CallStatus

RETRY_AFTER_SECONDS = 5  # calls end at any moment; a token expires within a minute at most

_lock = threading.Lock()  # views run in a worker thread, the consumers on the event loop
_running: set[str] = set()
_created: dict[str, datetime] = {}  # call id -> its token's expiry


class ServerBusy(APIException):
    """503 in the API's envelope, with Retry-After (DRF's handler sends `wait` as that)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The assistant is busy with other calls. Try again in a moment."
    default_code = "server_busy"

    def __init__(self) -> None:
        super().__init__()
        self.wait = RETRY_AFTER_SECONDS


def _call_saved(sender, instance: Call, created: bool, **kwargs) -> None:
    if created and instance.status == CallStatus.QUEUED and instance.token_expires_at:
        with _lock:
            _created[instance.pk] = instance.token_expires_at


# Every call created in this process (create-call, initiate, ...) counts, whoever made it.
post_save.connect(_call_saved, sender=Call, dispatch_uid="calls.capacity.call_saved")


def run_started(call_id: str) -> None:
    with _lock:
        _running.add(call_id)


def run_ended(call_id: str) -> None:
    with _lock:
        _running.discard(call_id)


def running() -> int:
    with _lock:
        return len(_running)


def unclaimed() -> int:
    """Calls created here whose token can still be used (reads the database: call from a
    thread). Forgets those that were claimed, ended, deleted or expired."""
    now = timezone.now()
    with _lock:
        for call_id, expires in list(_created.items()):
            if expires <= now:
                del _created[call_id]
        waiting = list(_created)
    if not waiting:
        return 0
    live = set(
        Call.objects.filter(
            pk__in=waiting,
            status=CallStatus.QUEUED,
            connected_at__isnull=True,
            token_expires_at__gt=now,
        ).values_list("pk", flat=True)
    )
    with _lock:
        for call_id in waiting:
            if call_id not in live:
                _created.pop(call_id, None)
    return len(live)


def calls_in_use() -> int:
    """Running call runtimes plus created calls whose token can still be used."""
    return unclaimed() + running()


def room_for(unclaimed_calls: int) -> bool:
    """Whether one more call fits, given `unclaimed()`; synchronous, so a consumer can check
    and start its runtime without another consumer starting one in between."""
    return running() + unclaimed_calls < settings.MAX_CONCURRENT_CALLS


def has_room() -> bool:
    return room_for(unclaimed())


def ensure_room() -> None:
    """For the API views that create calls: ServerBusy (503) when this process is full."""
    if not has_room():
        raise ServerBusy()
