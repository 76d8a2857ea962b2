from django.contrib import admin
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.ids import ObjectIdConverter
from widgets.views_pages import demo_page

# `<oid:widget_id>` and the like in the apps' urls (registered before they are included).
register_converter(ObjectIdConverter, "oid")

handler404 = "accounts.errors.json_not_found"
handler500 = "accounts.errors.json_server_error"

v1 = [
    # calls first: it owns /v1/widgets/create-call (calls may use widgets, not the reverse)
    path("", include("calls.urls")),
    path("", include("widgets.urls")),
    path("", include("assistants.urls")),
    path("", include("webhooks.urls")),
    path("", include("telephony.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("admin/", admin.site.urls),
    path("demo/", demo_page, name="demo"),
]
