"""`python manage.py phone_demo`: a phone call with the demo assistant, no Twilio account needed.

Starts the Twilio emulator (`twilio_emulator`), a web server and a job worker of its own on
free loopback ports (against this project's database, pointed at the emulator), connects the
emulator's account and a number to the demo assistant, places a call through the real flow
(the official SDK, signed callbacks, a real-time media stream), lets the emulated callee ask a
question (spoken with the offline Piper voice), then prints the call's statuses, transcript and
recording, and stops what it started. Run `make run` once before (demo data, models).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Organization
from assistants.models import Assistant
from calls.models import Call
from telephony.models import PhoneNumber, TwilioAccount
from telephony.services import phone_call_initiate
from widgets.views_pages import DEMO_ORGANIZATION

DEMO_NUMBER = "+15550100100"
CALLEE = "+15550100200"
QUESTION = "What are your opening hours?"
ROOT = Path(settings.BASE_DIR)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _question_audio() -> tuple[bytes, int]:
    """The callee's question, spoken by the offline Piper voice (installed by `make run`)."""
    import asyncio

    from voice.config import ProviderSpec
    from voice.providers.registry import create

    tts = create("tts", ProviderSpec("piper"))
    return asyncio.run(tts.synthesize(QUESTION)), 16000


class Command(BaseCommand):
    help = "Place a phone call with the demo assistant to the local Twilio emulator."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=90, help="seconds to wait")

    def handle(self, *args, **options):
        from twilio_emulator import Hangup, Scenario, Speak, TwilioEmulator, WaitForReply

        org = Organization.objects.filter(name=DEMO_ORGANIZATION).first()
        assistant = Assistant.objects.filter(organization=org).order_by("created_at").first()
        if org is None or assistant is None:
            raise CommandError("No demo assistant: run `make run` (or manage.py demo_setup).")
        self.stdout.write(f"Assistant: {assistant.name} ({assistant.id})")
        pcm, rate = _question_audio()
        script = [
            WaitForReply(timeout=30),
            Speak(pcm, rate=rate, label="question"),
            WaitForReply(timeout=30),
            Hangup(),
        ]
        emulator = TwilioEmulator(default_scenario=Scenario(ring_seconds=1.0, script=script))
        emulator.start()
        port = _free_port()
        env = {
            **os.environ,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "TWILIO_API_BASE_URL": emulator.base_url,
            "WEBRTC_ENABLED": "0",
        }
        python = sys.executable
        procs = [
            subprocess.Popen(
                [python, "-m", "widgetsite.serve", "-b", "127.0.0.1", "-p", str(port)]
                + ["widgetsite.asgi:application"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            ),
            subprocess.Popen(
                [python, "manage.py", "worker"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            ),
        ]
        try:
            self._wait_listening(port)
            number = self._number(org, assistant, emulator)
            call = phone_call_initiate(organization=org, phone_number=number, to_number=CALLEE)
            self.stdout.write(f"Calling {CALLEE} from {DEMO_NUMBER}: call {call.id}")
            emulated = emulator.wait_for_call(30)
            emulated.wait_ended(options["timeout"])
            call = self._ended(call.id, 30)
            self._report(call, emulated)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            emulator.stop()

    def _wait_listening(self, port: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.2)
        raise CommandError("the web server did not start")

    def _number(self, org, assistant, emulator) -> PhoneNumber:
        """The emulator's account (its credentials are new each run) and the demo number."""
        from accounts.crypto import encrypt

        account, _ = TwilioAccount.objects.update_or_create(
            organization=org,
            name="Twilio emulator",
            defaults={
                "account_sid": emulator.account_sid,
                "auth_token_encrypted": encrypt(emulator.auth_token),
            },
        )
        number, _ = PhoneNumber.objects.update_or_create(
            number=DEMO_NUMBER,
            defaults={"organization": org, "twilio_account": account, "assistant": assistant},
        )
        return number

    def _ended(self, call_id: str, timeout: float) -> Call:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            call = Call.objects.get(pk=call_id)
            if call.ended_at is not None:
                return call
            time.sleep(0.2)
        raise CommandError(f"call {call_id} did not end in time")

    def _report(self, call: Call, emulated) -> None:
        out = self.stdout.write
        out(f"Twilio statuses: {' -> '.join(emulated.statuses())}")
        out(f"Call: {call.get_status_display()} ({call.end_reason}), {call.duration_seconds} s")
        out("Transcript:")
        for line in call.transcript.all():
            mark = " (interrupted)" if line.interrupted else ""
            out(f"  {line.role:>9}: {line.text}{mark}")
        for turn in emulated.turns:
            if turn.latency is not None:
                out(f"Reply began {turn.latency * 1000:.0f} ms after the callee stopped speaking")
        if call.recording:
            out(f"Recording (caller left, assistant right): {call.recording.path}")
