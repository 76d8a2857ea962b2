from django.urls import path

from assistants import views

urlpatterns = [
    path("assistants", views.AssistantCollectionView.as_view(), name="assistant-list"),
    path(
        "assistants/<oid:assistant_id>",
        views.AssistantDetailView.as_view(),
        name="assistant-detail",
    ),
]
