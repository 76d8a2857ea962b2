from __future__ import annotations

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"

    def ready(self) -> None:
        import jobs
        from calls.events import event_recorded
        from webhooks.receivers import on_event_recorded

        # Inside the event's transaction: delivery rows commit (or roll back) with the event.
        event_recorded.connect(on_event_recorded, dispatch_uid="webhooks.on_event_recorded")
        # Rows are the truth: the sweeper wakes deliveries that are due (retries) or whose
        # queue message was lost, and those a killed worker left leased.
        jobs.periodic("webhooks.delivery.sweep", seconds=15)

        from calls.admin_views import DELIVERY_FINDERS
        from webhooks.selectors import deliveries_by_event

        # The call console shows each event's deliveries.
        if deliveries_by_event not in DELIVERY_FINDERS:
            DELIVERY_FINDERS.append(deliveries_by_event)
