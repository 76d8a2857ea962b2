"""Phone calls: phone provider accounts (Twilio), phone numbers and the provider's HTTP side
(placing calls with the official SDK, signed status callbacks, the inbound voice webhook)."""
