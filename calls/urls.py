from django.urls import path

from calls import views

urlpatterns = [
    path("calls", views.CallCollectionView.as_view(), name="call-list"),
    path("calls/initiate", views.CallInitiateView.as_view(), name="call-initiate"),
    path("calls/<oid:call_id>", views.CallDetailView.as_view(), name="call-detail"),
    path(
        "calls/<oid:call_id>/transcripts",
        views.CallTranscriptsView.as_view(),
        name="call-transcripts",
    ),
    path("calls/<oid:call_id>/recording", views.CallRecordingView.as_view(), name="call-recording"),
    path("calls/<oid:call_id>/turns", views.CallTurnsView.as_view(), name="call-turns"),
    path("calls/<oid:call_id>/analysis", views.CallAnalysisView.as_view(), name="call-analysis"),
    path("calls/<oid:call_id>/live", views.CallLiveView.as_view(), name="call-live"),
    path("calls/<oid:call_id>/end", views.CallEndView.as_view(), name="call-end"),
    path("calls/<oid:call_id>/cancel", views.CallCancelView.as_view(), name="call-cancel"),
    path("widgets/create-call", views.WidgetCreateCallView.as_view(), name="widget-create-call"),
]
