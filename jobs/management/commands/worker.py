"""`python manage.py worker`: the job worker (django-q2's cluster on the ORM broker).

Runs the cluster in the foreground until SIGINT/SIGTERM, and beside it a ticker thread that
enqueues every periodic job registered by the apps (at start, then at its interval: the
queue's own scheduler only knows whole minutes). Run as many workers as you like, on as many
machines as share the database: a job is leased by one worker, and a worker that dies has its
jobs re-delivered when the lease (Q_CLUSTER retry) runs out.
"""

from __future__ import annotations

import threading
import time

from django.core.management.base import BaseCommand
from django_q.cluster import Cluster

import jobs


class Command(BaseCommand):
    help = "Run the background job worker (periodic jobs, webhook delivery, analysis)."

    def handle(self, *args, **options):
        names = ", ".join(f"{f} every {s}s" for f, s in sorted(jobs.PERIODIC.items()))
        self.stdout.write(f"worker: periodic jobs: {names or '(none)'}")
        self.stdout.flush()
        stop = threading.Event()
        ticker = threading.Thread(
            target=jobs.run_periodic, args=(stop,), name="periodic-jobs", daemon=True
        )
        # django-q2's `qcluster` command returns once its sentinel process is up; the cluster
        # stops on SIGINT/SIGTERM (its own handlers). Stay in the foreground until then.
        cluster = Cluster()
        try:
            # The cluster forks its sentinel here (which forks the pusher, the monitor and the
            # workers). The ticker thread starts only after that fork: a thread holding a lock
            # (logging, the import lock, a database driver's) at the moment of a fork leaves
            # the child deadlocked on it forever. That froze whole workers under CI.
            cluster.start()
            ticker.start()
            while cluster.sentinel.is_alive():
                time.sleep(0.5)
        finally:
            stop.set()
            if ticker.is_alive():
                ticker.join(timeout=5)
