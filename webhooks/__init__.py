"""Signed webhooks: per-organization endpoints, Standard Webhooks delivery with retries, a
delivery log and replay. Subscribes to call events (`calls.events.event_recorded`)."""
