"""Background jobs: one small seam over the job queue (django-q2 with its ORM broker).

Rows in the domain tables are the source of truth; a queued job only wakes a worker. Every
job is therefore safe to run twice and cheap to run for nothing, and periodic sweepers find
work whose message was lost. Swapping the queue means changing this module only.

- ``enqueue("pkg.module.function", *args)``: run it in a worker soon.
- ``enqueue_on_commit(...)``: the same, once the current transaction has committed (so the
  worker sees the rows it needs, and nothing runs for a rolled-back change).
- ``periodic("pkg.module.function", seconds=N)``: register a periodic job (call from an app's
  ``ready()``); every ``python manage.py worker`` enqueues it at start and then every N s.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)

#: dotted path -> interval in seconds, filled by apps' ready()
PERIODIC: dict[str, int] = {}


def _run_now(func: str, args: tuple[Any, ...]) -> None:
    from django.utils.module_loading import import_string

    target = func.replace(":", ".")
    module, _, name = target.rpartition(".")
    import_string(f"{module}.{name}")(*args)


def enqueue(func: str, *args: Any) -> None:
    """Queue ``func(*args)`` (a dotted path to a module-level function) for a worker.

    With ``settings.JOBS_SYNC`` (tests, one-off scripts) it runs here and now instead."""
    from django.conf import settings

    if getattr(settings, "JOBS_SYNC", False):
        _run_now(func, args)
        return
    from django_q.tasks import async_task

    async_task(func, *args, q_options={"task_name": func.rsplit(".", 1)[-1], "save": False})


def enqueue_on_commit(func: str, *args: Any) -> None:
    """``enqueue`` once the current transaction commits (at once outside a transaction)."""
    from django.db import transaction

    transaction.on_commit(lambda: enqueue(func, *args))


def periodic(func: str, *, seconds: int) -> None:
    """Register ``func()`` to run about every ``seconds`` in the worker (call from an app's
    ``ready()``). Every worker process ticks them, so a periodic job must be idempotent
    (they are: sweepers and reapers use conditional updates)."""
    PERIODIC[func] = max(1, int(seconds))


def run_periodic(stop: threading.Event, *, tick: float = 1.0) -> None:
    """Enqueue each registered periodic job at once and then every interval, until ``stop``
    is set. The worker runs this in a thread beside the queue's cluster."""
    from django.db import close_old_connections

    due = dict.fromkeys(PERIODIC, 0.0)
    while not stop.is_set():
        now = time.monotonic()
        for func, at in due.items():
            if now >= at:
                due[func] = now + PERIODIC[func]
                try:
                    enqueue(func)
                except Exception:  # the database may be briefly away; try next tick
                    logger.warning("could not enqueue periodic job %s", func, exc_info=True)
                finally:
                    close_old_connections()
        stop.wait(tick)
