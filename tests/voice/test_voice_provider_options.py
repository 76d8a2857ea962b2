"""Provider options: declared types, bounds and roles; identity keys the shared cache, tuning
gets a light view; the cache is bounded and closes what it drops once no call uses it;
the operator's endpoints and options are parsed with clear errors."""

from __future__ import annotations

import gc
import inspect

import pytest

from voice.config import ProviderSpec
from voice.providers import registry
from voice.providers.base import ProviderError, Tunable
from voice.providers.openai_http import parse_endpoints
from voice.providers.options import (
    SCHEMAS,
    Option,
    check_options,
    operator_options,
    split_options,
)


class CountingTts(Tunable):
    """A provider whose construction (the 'model load') and closing are counted."""

    TUNING = ("volume",)
    built: list[dict] = []
    closed: list[CountingTts] = []

    def __init__(self, voice_file: str = "a", volume: float = 1.0) -> None:
        CountingTts.built.append({"voice_file": voice_file})
        self.voice_file, self.volume = voice_file, volume
        self.model = bytearray(1024)  # stands for the weights

    async def synthesize(self, text: str) -> bytes:
        return b"\x00\x00" * int(160 * self.volume)

    def close(self) -> None:
        if self.base is None:
            CountingTts.closed.append(self)


@pytest.fixture
def counting(monkeypatch):
    CountingTts.built.clear()
    CountingTts.closed.clear()
    registry.register("tts", "counting-test", f"{__name__}:CountingTts")
    monkeypatch.setitem(
        SCHEMAS["tts"],
        "counting-test",
        {
            "voice_file": Option(str, "identity"),
            "volume": Option(float, "tuning", min=0, max=2),
        },
    )
    yield
    registry.REGISTRY["tts"].pop("counting-test", None)


def test_every_provider_in_the_registry_declares_its_options():
    for kind, providers in registry.REGISTRY.items():
        for name in providers:
            if not name.endswith("-test") and name != "fake":
                assert name in SCHEMAS[kind], f"{kind} provider {name!r} has no option schema"


@pytest.mark.parametrize(
    "kind, name", [(kind, name) for kind, names in SCHEMAS.items() for name in names]
)
def test_every_declared_option_is_a_parameter_of_the_provider(kind, name):
    cls = registry.provider_class(kind, name)
    parameters = set(inspect.signature(cls.__init__).parameters)
    assert set(SCHEMAS[kind][name]) <= parameters
    tuning = {o for o, spec in SCHEMAS[kind][name].items() if spec.role == "tuning"}
    assert tuning == set(getattr(cls, "TUNING", ())), "tuning options must be tunable per call"


@pytest.mark.parametrize(
    "kind, name, options, bad",
    [
        ("stt", "faster-whisper", {"pad_ms": 2001}, "pad_ms"),
        ("stt", "faster-whisper", {"pad_ms": -1}, "pad_ms"),
        ("stt", "faster-whisper", {"beam_size": 6}, "beam_size"),
        ("stt", "faster-whisper", {"beam_size": True}, "beam_size"),
        ("stt", "faster-whisper", {"beam_size": 2.5}, "beam_size"),
        ("stt", "faster-whisper", {"mode": "fast"}, "mode"),
        ("stt", "faster-whisper", {"model_dir": "/etc"}, "model_dir"),
        ("stt", "faster-whisper", {"cache_dir": "/tmp"}, "cache_dir"),
        ("stt", "faster-whisper", {"cpu_threads": 64}, "cpu_threads"),
        ("stt", "faster-whisper", {"compute_type": "int8"}, "compute_type"),
        ("tts", "piper", {"model_path": "/etc/passwd"}, "model_path"),
        ("tts", "piper", {"length_scale": 0.1}, "length_scale"),
        ("tts", "piper", {"volume": 3}, "volume"),
        ("tts", "piper", {"volume": "loud"}, "volume"),
        ("tts", "piper", {"volume": float("nan")}, "volume"),
        ("tts", "espeak", {"rate": 10_000}, "rate"),
        ("tts", "espeak", {"voice": "../../etc"}, "voice"),
        ("tts", "openai", {"base_url": "http://127.0.0.1:8080/"}, "base_url"),
        ("tts", "openai", {"api_key": "sk-1"}, "api_key"),
        ("tts", "openai", {"allow_private": True}, "allow_private"),
        ("tts", "openai", {"speed": 10}, "speed"),
        ("brain", "knowledge", {"threshold": 1.5}, "threshold"),
        ("brain", "knowledge", {"goodbye_pattern": "(a+)+$"}, "goodbye_pattern"),
        ("brain", "openai", {"extra_body": {"x": "y" * 3000}}, "extra_body"),
        ("brain", "openai", {"colour": "red"}, "colour"),
        ("vad", "silero", {"max_batch": 1}, "max_batch"),
        ("vad", "webrtc", {"mode": 4}, "mode"),
    ],
)
def test_a_tenant_option_outside_its_type_bounds_or_role_is_refused(kind, name, options, bad):
    valid, errors = check_options(kind, name, options)
    assert list(errors) == [bad] and valid == {}


def test_operator_and_endpoint_options_are_named_as_such_for_tenants():
    _, errors = check_options("tts", "openai", {"base_url": "x", "model_dir": "y"})
    assert "operator" in errors["base_url"] and "endpoint by name" in errors["base_url"]
    _, errors = check_options("stt", "faster-whisper", {"model_dir": "y"})
    assert "operator" in errors["model_dir"]


def test_valid_tenant_options_are_normalised():
    valid, errors = check_options(
        "tts", "piper", {"volume": 1, "length_scale": 1.2, "speaker_id": None}
    )
    assert errors == {} and valid == {"volume": 1.0, "length_scale": 1.2, "speaker_id": None}
    assert isinstance(valid["volume"], float)


def test_split_separates_identity_and_operator_options_from_tuning():
    build, tuning = split_options(
        "stt",
        "faster-whisper",
        {"cache_dir": "var/models", "cpu_threads": 2, "beam_size": 2, "pad_ms": 500},
    )
    assert build == {"cache_dir": "var/models", "cpu_threads": 2}
    assert tuning == {"beam_size": 2, "pad_ms": 500}
    with pytest.raises(ValueError, match="pad_ms"):
        split_options("stt", "faster-whisper", {"pad_ms": 99_999})


def test_tuning_does_not_build_a_second_copy_and_each_call_keeps_its_own(counting):
    cache = registry.ProviderCache()
    views = [
        cache.get("tts", ProviderSpec("counting-test", {"volume": v})) for v in (0.5, 1.0, 2.0)
    ]
    assert len(CountingTts.built) == 1 and cache.size("tts") == 1
    assert [v.volume for v in views] == [0.5, 1.0, 2.0]
    assert len({id(v.model) for v in views}) == 1  # one model, shared
    other = cache.get("tts", ProviderSpec("counting-test", {"voice_file": "b", "volume": 1}))
    assert len(CountingTts.built) == 2 and other.model is not views[0].model


async def test_registry_create_applies_tuning_in_place_for_an_owned_provider(counting):
    provider = registry.create("tts", ProviderSpec("counting-test", {"volume": 0.25}))
    assert provider.base is None and provider.volume == 0.25
    with pytest.raises(ProviderError, match="bad options for tts provider 'counting-test'"):
        registry.create("tts", ProviderSpec("counting-test", {"volume": 9}))


def test_the_cache_is_bounded_and_closes_an_evicted_provider_once_unused(counting):
    cache = registry.ProviderCache(max_per_kind=2)
    in_call = cache.get("tts", ProviderSpec("counting-test", {"voice_file": "a"}))
    cache.get("tts", ProviderSpec("counting-test", {"voice_file": "b"}))
    cache.get("tts", ProviderSpec("counting-test", {"voice_file": "c"}))  # evicts "a"
    assert cache.size("tts") == 2
    assert CountingTts.closed == []  # "a" is still used by a call
    del in_call
    gc.collect()
    cache.get("tts", ProviderSpec("counting-test", {"voice_file": "d"}))  # evicts "b", sweeps
    assert sorted(p.voice_file for p in CountingTts.closed) == ["a", "b"]
    assert cache.size("tts") == 2
    # "a" again: built anew, the bound still holds.
    cache.get("tts", ProviderSpec("counting-test", {"voice_file": "a"}))
    assert [b["voice_file"] for b in CountingTts.built] == ["a", "b", "c", "d", "a"]
    assert cache.size("tts") == 2


async def test_a_view_never_closes_the_shared_worker():
    from voice.providers.tts_espeak import EspeakTts

    base = EspeakTts()
    view = base.tuned(rate=200)
    await view.synthesize("Hi.")
    await view.aclose()
    assert base._worker._executor is not None  # noqa: SLF001
    await base.aclose()
    assert base._worker._executor is None  # noqa: SLF001


def test_endpoints_parse_with_keys_from_the_environment():
    endpoints = parse_endpoints(
        '{"openai": {"base_url": "https://api.openai.com/v1/", "api_key_env": "K"},'
        ' "local": {"base_url": "http://127.0.0.1:11434/v1", "allow_private": true}}',
        {"K": "sk-from-env"},
    )
    assert endpoints["openai"].api_key == "sk-from-env"
    assert endpoints["openai"].base_url == "https://api.openai.com/v1"
    assert endpoints["local"].provider_options() == {
        "endpoint": "local",
        "base_url": "http://127.0.0.1:11434/v1",
        "api_key": "",
        "allow_private": True,
    }
    assert "sk-from-env" not in repr(endpoints["openai"])


@pytest.mark.parametrize(
    "raw, message",
    [
        ("[]", "JSON object"),
        ("{", "JSON object"),
        ('{"a": {}}', "base_url is required"),
        ('{"a b": {"base_url": "https://x.example"}}', "names are"),
        ('{"a": {"base_url": "https://x.example", "token": "t"}}', "unknown key 'token'"),
        ('{"a": {"base_url": "http://127.0.0.1:1/v1"}}', "allow_private"),
        ('{"a": {"base_url": "http://169.254.169.254/", "allow_private": true}}', "metadata"),
        ('{"a": {"base_url": "ftp://x.example"}}', "http"),
        ('{"a": {"base_url": "https://u:p@x.example"}}', "user info"),
        ('{"a": {"base_url": "https://x.example", "api_key_env": "MISSING"}}', "MISSING"),
        ('{"a": {"base_url": "https://x.example", "api_key": "k", "api_key_env": "K"}}', "both"),
        ('{"a": {"base_url": "https://x.example", "allow_private": "yes"}}', "true or false"),
    ],
)
def test_bad_endpoints_are_refused_with_a_message_that_says_what_to_fix(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_endpoints(raw, {"K": "k"})


def test_operator_options_accept_operator_settings_only():
    parsed = operator_options('{"stt.faster-whisper": {"cpu_threads": 4, "model_dir": "/m"}}')
    assert parsed == {("stt", "faster-whisper"): {"cpu_threads": 4, "model_dir": "/m"}}
    for raw, message in [
        ('{"stt.faster-whisper": {"beam_size": 2}}', "assistants set it"),
        ('{"tts.openai": {"base_url": "https://x.example"}}', "VOICE_ENDPOINTS"),
        ('{"stt.nope": {}}', "not a provider"),
        ('{"stt.faster-whisper": {"cpu_threads": 999}}', "at most"),
    ]:
        with pytest.raises(ValueError, match=message):
            operator_options(raw)
