from django.apps import AppConfig


class WidgetsConfig(AppConfig):
    name = "widgets"

    def ready(self) -> None:
        from widgets import cors  # noqa: F401  (connects the CORS signal)
