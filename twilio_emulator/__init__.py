"""A local Twilio emulator for tests and demos: the REST Calls resource, signed status
callbacks, and the media side of bidirectional Media Streams. Framework-free."""

from twilio_emulator.audio import load_wav, mulaw_decode, mulaw_encode, save_wav
from twilio_emulator.calls import Callback, EmulatedCall, Scenario
from twilio_emulator.emulator import TwilioEmulator
from twilio_emulator.media import MediaSession
from twilio_emulator.script import CallerScript, Dtmf, Hangup, Silence, Speak, WaitForReply
from twilio_emulator.signing import SIGNATURE_HEADER, twilio_signature
from twilio_emulator.twiml import StreamSpec, parse_twiml

__all__ = [
    "SIGNATURE_HEADER",
    "Callback",
    "CallerScript",
    "Dtmf",
    "EmulatedCall",
    "Hangup",
    "MediaSession",
    "Scenario",
    "Silence",
    "Speak",
    "StreamSpec",
    "TwilioEmulator",
    "WaitForReply",
    "load_wav",
    "mulaw_decode",
    "mulaw_encode",
    "parse_twiml",
    "save_wav",
    "twilio_signature",
]
