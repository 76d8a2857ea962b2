from django.urls import path

from calls import views

urlpatterns = [
    path("calls", views.CallCollectionView.as_view(), name="call-list"),
    path("calls/initiate", views.CallInitiateView.as_view(), name="call-initiate"),
    path("calls/<str:call_id>", views.CallDetailView.as_view(), name="call-detail"),
    path(
        "calls/<str:call_id>/transcripts",
        views.CallTranscriptsView.as_view(),
        name="call-transcripts",
    ),
    path("calls/<str:call_id>/recording", views.CallRecordingView.as_view(), name="call-recording"),
    path("calls/<str:call_id>/analysis", views.CallAnalysisView.as_view(), name="call-analysis"),
    path("widgets/create-call", views.WidgetCreateCallView.as_view(), name="widget-create-call"),
]
