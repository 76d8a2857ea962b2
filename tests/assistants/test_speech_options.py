"""Speech provider options over the API (typed, bounded, no server paths, URLs or keys from
tenants; endpoints picked by name) and what a call's engine config is built from them
(the operator's endpoint and options filled in, stored options no longer valid ignored and
logged once)."""

from __future__ import annotations

import logging

import pytest

from assistants.models import Assistant
from assistants.serializers import PROVIDERS
from calls.runtime import _IGNORED_LOGGED, session_config_for
from voice.providers import registry
from voice.providers.openai_http import parse_endpoints
from voice.providers.options import schema

ENDPOINTS = (
    '{"openai": {"base_url": "https://api.openai.com/v1", "api_key": "sk-operator-key"},'
    ' "local": {"base_url": "http://127.0.0.1:11434/v1", "allow_private": true}}'
)
BODY = {"name": "Support", "system_prompt": "You help."}


@pytest.fixture
def endpoints(settings):
    settings.VOICE_ENDPOINTS = parse_endpoints(ENDPOINTS, {})
    return settings.VOICE_ENDPOINTS


def speech(stage: str, provider: str, **options) -> dict:
    return {"speech": {stage: {"provider": provider, "options": options}}}


def test_every_provider_offered_to_tenants_has_an_option_schema():
    for stage, providers in PROVIDERS.items():
        for provider in providers:
            assert schema(stage, provider) is not None, (stage, provider)


@pytest.mark.django_db
class TestApi:
    @pytest.mark.parametrize(
        "stage, provider, options, named",
        [
            # Issue 1: a tenant pointing the server at any URL.
            ("tts", "openai", {"base_url": "http://127.0.0.1:9/"}, "speech.tts.options.base_url"),
            ("brain", "openai", {"base_url": "https://x.example"}, "speech.brain.options.base_url"),
            ("stt", "openai", {"api_key": "sk-1"}, "speech.stt.options.api_key"),
            ("tts", "openai", {"allow_private": True}, "speech.tts.options.allow_private"),
            ("tts", "openai", {"endpoint": "nope"}, "speech.tts.options.endpoint"),
            # Issue 2: server paths, process settings, unbounded values.
            ("stt", "faster-whisper", {"model_dir": "/etc"}, "speech.stt.options.model_dir"),
            ("stt", "faster-whisper", {"cache_dir": "/tmp"}, "speech.stt.options.cache_dir"),
            ("stt", "faster-whisper", {"cpu_threads": 64}, "speech.stt.options.cpu_threads"),
            (
                "stt",
                "faster-whisper",
                {"compute_type": "float32"},
                "speech.stt.options.compute_type",
            ),
            ("stt", "faster-whisper", {"pad_ms": 1_000_000}, "speech.stt.options.pad_ms"),
            ("stt", "faster-whisper", {"beam_size": 50}, "speech.stt.options.beam_size"),
            ("tts", "piper", {"model_path": "/etc/passwd"}, "speech.tts.options.model_path"),
            ("tts", "piper", {"volume": 100}, "speech.tts.options.volume"),
            ("tts", "piper", {"length_scale": "slow"}, "speech.tts.options.length_scale"),
            ("tts", "espeak", {"pitch": 500}, "speech.tts.options.pitch"),
            ("brain", "knowledge", {"threshold": 2}, "speech.brain.options.threshold"),
            (
                "brain",
                "knowledge",
                {"goodbye_pattern": "(a*)*b"},
                "speech.brain.options.goodbye_pattern",
            ),
            ("brain", "openai", {"temperature": 9}, "speech.brain.options.temperature"),
            ("vad", "silero", {"max_batch": 4096}, "speech.vad.options.max_batch"),
            ("vad", "webrtc", {"colour": "red"}, "speech.vad.options.colour"),
        ],
    )
    def test_a_refused_option_is_400_naming_it_on_create_and_update(
        self, api, assistant, endpoints, stage, provider, options, named
    ):
        before = Assistant.objects.filter(pk=assistant.pk).values().get()
        created = api.post("/v1/assistants", {**BODY, **speech(stage, provider, **options)})
        updated = api.patch(f"/v1/assistants/{assistant.id}", speech(stage, provider, **options))
        for response in (created, updated):
            assert response.status_code == 400, response.content
            body = response.json()
            assert named in body["message"]
            assert "speech" in body["errors"]
        assert Assistant.objects.count() == 1
        assert Assistant.objects.filter(pk=assistant.pk).values().get() == before

    def test_valid_tuning_and_an_endpoint_by_name_are_stored(self, api, endpoints):
        body = {
            **BODY,
            "speech": {
                "stt": {"provider": "faster-whisper", "options": {"pad_ms": 500, "beam_size": 2}},
                "brain": {
                    "provider": "openai",
                    "options": {"endpoint": "local", "model": "llama3"},
                },
                "tts": {"provider": "piper", "options": {"volume": 1, "length_scale": 1.1}},
            },
        }
        response = api.post("/v1/assistants", body)
        assert response.status_code == 201, response.content
        shown = response.json()["data"]["speech"]
        assert shown["brain"] == {
            "provider": "openai",
            "options": {"endpoint": "local", "model": "llama3"},
        }
        stored = Assistant.objects.get(pk=response.json()["data"]["id"]).speech
        assert stored["tts"]["options"] == {"volume": 1.0, "length_scale": 1.1}
        assert "sk-operator-key" not in response.content.decode()

    def test_a_tuning_option_with_a_secret_looking_name_is_shown_and_round_trips(
        self, api, endpoints
    ):
        body = {**BODY, **speech("brain", "openai", endpoint="local", max_tokens=120)}
        created = api.post("/v1/assistants", body)
        assert created.status_code == 201, created.content
        shown = created.json()["data"]["speech"]
        assert shown["brain"]["options"] == {"endpoint": "local", "max_tokens": 120}
        again = api.patch(f"/v1/assistants/{created.json()['data']['id']}", {"speech": shown})
        assert again.status_code == 200, again.content

    def test_a_networked_provider_needs_a_configured_endpoint(self, api, settings):
        settings.VOICE_ENDPOINTS = {}
        response = api.post("/v1/assistants", {**BODY, **speech("tts", "openai")})
        assert response.status_code == 400
        assert "speech.tts.provider" in response.json()["message"]
        assert "endpoint" in response.json()["message"]

    def test_the_unknown_endpoint_error_lists_the_configured_names_only(self, api, endpoints):
        response = api.post("/v1/assistants", {**BODY, **speech("stt", "openai", endpoint="x")})
        message = response.json()["message"]
        assert "openai" in message and "local" in message
        assert "127.0.0.1" not in response.content.decode()
        assert "sk-operator-key" not in response.content.decode()


@pytest.mark.django_db
class TestSessionConfig:
    @pytest.fixture(autouse=True)
    def _fresh_log_memory(self):
        _IGNORED_LOGGED.clear()

    def config_for(self, make_call, make_assistant, speech_setting):
        assistant = make_assistant(speech=speech_setting)
        return session_config_for(make_call(assistant=assistant))

    def test_the_named_endpoint_becomes_the_providers_url_key_and_network_rule(
        self, make_call, make_assistant, endpoints
    ):
        config = self.config_for(
            make_call,
            make_assistant,
            {
                "brain": {"provider": "openai", "options": {"endpoint": "local", "model": "m"}},
                "tts": {"provider": "openai", "options": {"voice": "nova"}},  # the first one
            },
        )
        assert config.brain.options == {
            "endpoint": "local",
            "base_url": "http://127.0.0.1:11434/v1",
            "api_key": "",
            "allow_private": True,
            "model": "m",
        }
        assert config.tts.options["base_url"] == "https://api.openai.com/v1"
        assert config.tts.options["api_key"] == "sk-operator-key"
        assert config.tts.options["allow_private"] is False

    def test_stored_options_no_longer_valid_are_ignored_and_logged_once(
        self, make_call, make_assistant, endpoints, caplog
    ):
        legacy = {
            "tts": {
                "provider": "openai",
                "options": {
                    "endpoint": "openai",
                    "base_url": "http://127.0.0.1:9/",
                    "api_key": "sk-tenant-secret",
                    "voice": "nova",
                },
            },
            "stt": {
                "provider": "faster-whisper",
                "options": {"model_dir": "/etc", "cpu_threads": 64, "pad_ms": 5000, "beam_size": 2},
            },
        }
        assistant = make_assistant(speech=legacy)
        caplog.set_level(logging.WARNING, logger="calls.runtime")
        first = session_config_for(make_call(assistant=assistant))
        second = session_config_for(make_call(assistant=assistant))
        assert first.tts.options["base_url"] == "https://api.openai.com/v1"
        assert first.tts.options["api_key"] == "sk-operator-key"
        assert first.tts.options["voice"] == "nova"
        assert first.stt.options == {"beam_size": 2, "cache_dir": first.stt.options["cache_dir"]}
        assert second.stt.options == first.stt.options
        ignored = [r.getMessage() for r in caplog.records if "ignoring" in r.getMessage()]
        for option in ("tts.options.base_url", "tts.options.api_key", "stt.options.model_dir"):
            assert sum(option in line for line in ignored) == 1, ignored
        assert len(ignored) == 5  # once each, not once per call
        assert not any("sk-tenant-secret" in line or "/etc" in line for line in ignored)

    def test_an_unknown_endpoint_or_provider_falls_back_to_the_offline_default(
        self, make_call, make_assistant, endpoints, settings
    ):
        config = self.config_for(
            make_call,
            make_assistant,
            {
                "tts": {"provider": "openai", "options": {"endpoint": "removed"}},
                "vad": {"provider": "festival", "options": {}},
            },
        )
        assert config.tts.name == "piper" and config.tts.options == {}
        assert config.vad.name == "silero"
        settings.VOICE_ENDPOINTS = {}
        config = self.config_for(
            make_call, make_assistant, {"stt": {"provider": "openai", "options": {}}}
        )
        assert config.stt.name == "faster-whisper"

    def test_operator_options_and_the_cache_bound_come_from_settings(
        self, make_call, make_assistant, settings
    ):
        settings.VOICE_PROVIDER_OPTIONS = {
            ("stt", "faster-whisper"): {"cpu_threads": 3},
            ("tts", "piper"): {"model_path": "/srv/voices/x.onnx"},
        }
        settings.VOICE_PROVIDER_CACHE_SIZE = 3
        saved = registry.default_cache.max_per_kind
        try:
            config = self.config_for(
                make_call,
                make_assistant,
                {"tts": {"provider": "piper", "options": {"volume": 0.5}}},
            )
            assert config.stt.options == {
                "cpu_threads": 3,
                "cache_dir": str(settings.VOICE_MODEL_DIR),
            }
            assert config.tts.options == {"model_path": "/srv/voices/x.onnx", "volume": 0.5}
            assert registry.default_cache.max_per_kind == 3
        finally:
            registry.default_cache.max_per_kind = saved
