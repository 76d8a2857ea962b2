from django.urls import path

from widgets import views

urlpatterns = [
    path("widgets", views.WidgetCollectionView.as_view(), name="widget-list"),
    path(
        "widgets/<oid:widget_id>/public",
        views.WidgetPublicConfigView.as_view(),
        name="widget-public",
    ),
    path("widgets/<oid:widget_id>", views.WidgetDetailView.as_view(), name="widget-detail"),
]
