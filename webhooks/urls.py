from django.urls import path

from webhooks import views

urlpatterns = [
    path("webhooks", views.WebhookCollectionView.as_view(), name="webhook-list"),
    path("webhooks/<oid:webhook_id>", views.WebhookDetailView.as_view(), name="webhook-detail"),
    path(
        "webhooks/<oid:webhook_id>/rotate-secret",
        views.WebhookRotateSecretView.as_view(),
        name="webhook-rotate-secret",
    ),
    path("webhooks/<oid:webhook_id>/test", views.WebhookTestView.as_view(), name="webhook-test"),
    path(
        "webhooks/<oid:webhook_id>/deliveries",
        views.WebhookDeliveriesView.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "webhooks/<oid:webhook_id>/deliveries/<oid:delivery_id>/replay",
        views.WebhookDeliveryReplayView.as_view(),
        name="webhook-delivery-replay",
    ),
    path(
        "webhooks/<oid:webhook_id>/replay-failed",
        views.WebhookReplayFailedView.as_view(),
        name="webhook-replay-failed",
    ),
]
