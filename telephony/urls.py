from django.urls import path

from telephony import twilio_views, views

urlpatterns = [
    path("calls/phone/initiate", views.PhoneCallInitiateView.as_view(), name="call-phone-initiate"),
    path("phone-numbers", views.PhoneNumberCollectionView.as_view(), name="phone-number-list"),
    path(
        "phone-numbers/<oid:phone_number_id>",
        views.PhoneNumberDetailView.as_view(),
        name="phone-number-detail",
    ),
    path(
        "telephony/twilio-accounts",
        views.TwilioAccountCollectionView.as_view(),
        name="twilio-account-list",
    ),
    path(
        "telephony/twilio-accounts/<oid:account_id>",
        views.TwilioAccountDetailView.as_view(),
        name="twilio-account-detail",
    ),
    # Twilio's own requests (signed with X-Twilio-Signature, not API keys).
    path("telephony/twilio/status", twilio_views.status_callback, name="twilio-status"),
    path(
        "telephony/twilio/status/<oid:call_id>",
        twilio_views.status_callback,
        name="twilio-status-call",
    ),
    path("telephony/twilio/voice", twilio_views.voice_webhook, name="twilio-voice"),
]
