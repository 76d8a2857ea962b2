from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"

    def ready(self) -> None:
        import jobs
        from calls.jobs import REAP_EVERY_SECONDS

        # The reaper is a periodic job of the worker (no thread in the web process).
        jobs.periodic("calls.jobs.reap_calls", seconds=REAP_EVERY_SECONDS)

        from calls.analysis import SWEEP_EVERY_SECONDS, on_event_recorded
        from calls.events import event_recorded

        # Post-call analysis: queued inside the `call.ended` transaction, swept periodically.
        event_recorded.connect(on_event_recorded, dispatch_uid="calls.analysis.on_event_recorded")
        jobs.periodic("calls.analysis.sweep", seconds=SWEEP_EVERY_SECONDS)
