"""Pieces: the signature against the SDK's, mu-law, TwiML parsing, WAV scripts."""

from __future__ import annotations

import numpy as np
import pytest
from twilio.request_validator import RequestValidator

from twilio_emulator import Speak, parse_twiml, save_wav, twilio_signature
from twilio_emulator.audio import mulaw_decode, mulaw_encode, to_8k
from twilio_emulator.script import last_speech_frame
from twilio_emulator.twiml import TwimlError


def test_signature_matches_the_sdk():
    url = "https://example.test/status?x=1"
    params = {"CallSid": "CA1", "To": "+15550001111", "From": "+15550002222", "Digits": "1234"}
    assert twilio_signature("secret", url, params) == RequestValidator("secret").compute_signature(
        url, params
    )
    assert twilio_signature("secret", "wss://example.test/ws", {}) == RequestValidator(
        "secret"
    ).compute_signature("wss://example.test/ws", {})


def test_mulaw_known_codes_and_round_trip():
    assert mulaw_encode(np.array([0, 32767, -32768, -1], np.int16)) == bytes(
        [0xFF, 0x80, 0x00, 0x7E]
    )
    assert list(mulaw_decode(bytes([0xFF, 0x80, 0x00]))) == [0, 32124, -32124]
    pcm = (np.sin(np.linspace(0, 60, 8000)) * 20000).astype(np.int16)
    error = np.abs(mulaw_decode(mulaw_encode(pcm)).astype(int) - pcm)
    assert error.max() <= 1024 and error.mean() < 200


def test_mulaw_agrees_with_the_product_codec():
    from voice.audio import mulaw_to_pcm16, pcm16_to_mulaw  # framework-free, as this package

    pcm = np.arange(-32768, 32768, dtype=np.int16)
    assert mulaw_encode(pcm) == pcm16_to_mulaw(pcm.tobytes())
    codes = bytes(range(256))
    assert mulaw_decode(codes).tobytes() == mulaw_to_pcm16(codes)


def test_parse_twiml_connect_stream_with_parameters():
    plan = parse_twiml(
        '<?xml version="1.0" encoding="UTF-8"?><Response><Say>hi</Say><Connect>'
        '<Stream url="wss://a.test/ws" name="n"><Parameter name="token" value="t1"/>'
        '<Parameter name="k" value="v"/></Stream></Connect></Response>'
    )
    assert plan.stream.url == "wss://a.test/ws" and plan.stream.name == "n"
    assert plan.stream.parameters == {"token": "t1", "k": "v"}
    assert plan.skipped == ["Say"]
    assert parse_twiml("<Response><Hangup/></Response>").stream is None
    with pytest.raises(TwimlError):
        parse_twiml("<Response><Connect/></Response>")
    with pytest.raises(TwimlError):
        parse_twiml("not xml")


def test_speak_resamples_a_wav_into_20ms_frames(tmp_path):
    t = np.arange(22050) / 22050
    pcm = (np.sin(2 * np.pi * 300 * t) * 9000).astype("<i2")
    pcm = np.concatenate([pcm, np.zeros(11025, "<i2")])  # 1 s tone + 0.5 s silence at 22.05 kHz
    path = tmp_path / "q.wav"
    save_wav(path, pcm.tobytes(), 22050)
    frames = Speak(path).frames()
    assert len(frames) == 75 and all(len(f) == 160 for f in frames)
    assert 48 <= last_speech_frame(frames) <= 51  # end of the tone, not of the file
    assert len(to_8k(pcm, 22050)) == 12000
