from django.apps import AppConfig


class TelephonyConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "telephony"
    verbose_name = "Telephony"

    def ready(self) -> None:
        from calls.events import event_recorded
        from telephony.receivers import call_event_recorded

        event_recorded.connect(call_event_recorded, dispatch_uid="telephony.call_ended_hangup")
