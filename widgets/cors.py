"""CORS for the public widget endpoints (django-cors-headers' `check_request_enabled`).

The public configuration is readable from any origin (it is what the page shows anyway, and
it tells the widget when its origin is not allowed). create-call's preflight and response
carry CORS headers only for origins some widget allows; the view then checks the widget.
"""

from __future__ import annotations

import re

from corsheaders.middleware import CorsMiddleware
from corsheaders.signals import check_request_enabled

from widgets.origins import origin_allowed_anywhere

PUBLIC_CONFIG_PATH = re.compile(r"^/v1/widgets/[0-9a-f]{24}/public/?$")


def cors_allow_widget_origins(sender, request, **kwargs) -> bool:
    origin = request.headers.get("Origin", "")
    if PUBLIC_CONFIG_PATH.match(request.path):
        return True
    if request.path.rstrip("/") == "/v1/widgets/create-call":
        return bool(origin) and origin_allowed_anywhere(origin)
    return False


check_request_enabled.connect(cors_allow_widget_origins)


class WidgetCorsMiddleware(CorsMiddleware):
    """django-cors-headers, run synchronously: the signal above queries the database."""

    async_capable = False
