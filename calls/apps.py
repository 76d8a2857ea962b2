from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"

    def ready(self) -> None:
        import jobs
        from calls.jobs import REAP_EVERY_SECONDS

        # The reaper is a periodic job of the worker (no thread in the web process).
        jobs.periodic("calls.jobs.reap_calls", seconds=REAP_EVERY_SECONDS)
