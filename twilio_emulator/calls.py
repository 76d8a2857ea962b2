"""One emulated call: its state machine (scenario), status callbacks, TwiML and media stream."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from twilio_emulator.media import MediaSession, new_sid
from twilio_emulator.script import CallerScript
from twilio_emulator.signing import SIGNATURE_HEADER, twilio_signature
from twilio_emulator.twiml import TwimlError, parse_twiml

if TYPE_CHECKING:
    from twilio_emulator.emulator import TwilioEmulator

API_VERSION = "2010-04-01"
OUTCOMES = ("answer", "busy", "no-answer", "failed", "canceled")
TERMINAL = ("completed", "busy", "failed", "no-answer", "canceled")
CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
SIP_CODES = {
    "completed": "200",
    "busy": "486",
    "no-answer": "487",
    "canceled": "487",
    "failed": "500",
}


@dataclass
class Scenario:
    """How the far end behaves. ``outcome``: answer (default), busy, no-answer, failed, or
    canceled (the call is given up while ringing). ``ring_seconds``: time spent ringing before
    the outcome. ``script``: what the callee says once the stream is up."""

    outcome: str = "answer"
    ring_seconds: float = 0.2
    script: CallerScript = field(default_factory=CallerScript)
    max_call_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        if isinstance(self.script, list):
            self.script = CallerScript(list(self.script))


@dataclass
class Callback:
    event: str
    url: str
    method: str
    params: dict[str, str]
    headers: dict[str, str]
    sent_at: float
    status_code: int | None = None
    error: str | None = None


def _rfc2822(moment: datetime | None) -> str | None:
    return format_datetime(moment, usegmt=False).replace("-0000", "+0000") if moment else None


class EmulatedCall:
    def __init__(
        self,
        emulator: TwilioEmulator,
        *,
        account_sid: str,
        to: str,
        from_: str,
        direction: str,
        scenario: Scenario,
        twiml: str | None = None,
        url: str | None = None,
        method: str = "POST",
        status_callback: str | None = None,
        status_callback_method: str = "POST",
        status_callback_events: list[str] | None = None,
    ) -> None:
        self.emulator = emulator
        self.sid = new_sid("CA")
        self.account_sid = account_sid
        self.to, self.from_, self.direction = to, from_, direction
        self.scenario = scenario
        self.twiml, self.url, self.method = twiml, url, method
        self.status_callback = status_callback
        self.status_callback_method = status_callback_method
        events = status_callback_events or (["completed"] if status_callback else [])
        self.status_callback_events = set(events) if status_callback else set()
        self.status = "queued"
        self.date_created = datetime.now(UTC)
        self.date_updated = self.date_created
        self.start_time: datetime | None = None
        self.end_time: datetime | None = None
        self.answered_at: float | None = None
        self.created_at = time.monotonic()
        self.callbacks: list[Callback] = []
        self.streams: list[MediaSession] = []
        self.timeline: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self.ended = threading.Event()  # set once the call is over and its callbacks delivered
        self.stream_started = threading.Event()
        self._callback_seq = 0
        self._callbacks: asyncio.Queue | None = None
        self._wake = asyncio.Event()  # a REST update arrived
        self._cancel_requested = False
        self._hangup_requested = False
        self._redirect: tuple[str | None, str | None] | None = None
        self._over = asyncio.Event()

    # ------------------------------------------------------------------ public, any thread

    @property
    def stream(self) -> MediaSession | None:
        return self.streams[-1] if self.streams else None

    @property
    def turns(self) -> list:
        """Every caller utterance of the call's streams, with its end -> first reply timing."""
        return [turn for stream in self.streams for turn in stream.turns]

    @property
    def duration(self) -> int | None:
        if self.start_time is None or self.end_time is None:
            return None
        return int((self.end_time - self.start_time).total_seconds())

    def wait_ended(self, timeout: float = 30.0) -> bool:
        return self.ended.wait(timeout)

    def wait_stream(self, timeout: float = 10.0) -> MediaSession:
        if not self.stream_started.wait(timeout):
            raise TimeoutError(f"{self.sid}: no media stream started within {timeout}s")
        return self.streams[-1]

    def hangup(self) -> None:
        """The callee hangs up: the stream gets `stop`, the call completes."""
        self.emulator._call_soon(self._caller_hangup)

    def send_dtmf(self, digit: str, timeout: float = 5.0) -> None:
        stream = self.wait_stream(timeout)
        self.emulator._run_sync(stream.send_dtmf(digit), timeout)

    def statuses(self) -> list[str]:
        """CallStatus of every status callback sent, in order."""
        return [cb.params["CallStatus"] for cb in self.callbacks]

    def transcript(self) -> str:
        lines = [f"call {self.sid} {self.direction} {self.from_} -> {self.to}: {self.status}"]
        for at, text in sorted(self.timeline, key=lambda entry: entry[0]):
            lines.append(f"{at - self.created_at:8.3f}s  {text}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        base = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "annotation": None,
            "answered_by": None,
            "api_version": API_VERSION,
            "caller_name": None,
            "date_created": _rfc2822(self.date_created),
            "date_updated": _rfc2822(self.date_updated),
            "direction": self.direction,
            "duration": None if self.duration is None else str(self.duration),
            "end_time": _rfc2822(self.end_time),
            "forwarded_from": None,
            "from": self.from_,
            "from_formatted": self.from_,
            "group_sid": None,
            "parent_call_sid": None,
            "phone_number_sid": None,
            "price": None,
            "price_unit": "USD",
            "queue_time": "0",
            "sid": self.sid,
            "start_time": _rfc2822(self.start_time),
            "status": self.status,
            "subresource_uris": {
                "notifications": f"{base}/Notifications.json",
                "recordings": f"{base}/Recordings.json",
                "streams": f"{base}/Streams.json",
            },
            "to": self.to,
            "to_formatted": self.to,
            "trunk_sid": None,
            "uri": f"{base}.json",
        }

    # ------------------------------------------------------------------ the call (loop only)

    def _note(self, text: str) -> None:
        self.timeline.append((time.monotonic(), text))

    def _set_status(self, status: str) -> None:
        self.status = status
        self.date_updated = datetime.now(UTC)
        self._note(f"status {status}")

    async def run(self) -> None:
        self._callbacks = asyncio.Queue()
        worker = asyncio.create_task(self._deliver_callbacks())
        try:
            await self._lifecycle()
        except Exception as exc:  # keep the emulator alive; the test sees it in errors
            self.errors.append(f"internal: {exc!r}")
            self._finish("failed" if self.start_time is None else "completed")
        finally:
            await worker

    async def _lifecycle(self) -> None:
        scenario = self.scenario
        twiml, url = self.twiml, self.url
        if self.direction == "inbound":  # the number's voice webhook is asked while ringing
            self._set_status("ringing")
            self._callback("ringing")
            twiml = await self._fetch_twiml(url, self.method, "ringing")
            url = None
            if twiml is None:
                self._finish("failed")
                return
        else:
            self._set_status("initiated")
            self._callback("initiated")
            if scenario.outcome in ("busy", "failed"):
                await self._pause(scenario.ring_seconds)
                self._finish("canceled" if self._cancel_requested else scenario.outcome)
                return
            self._set_status("ringing")
            self._callback("ringing")
        await self._pause(scenario.ring_seconds)
        if self._cancel_requested or scenario.outcome in ("canceled", "no-answer"):
            self._finish("canceled" if self._cancel_requested else scenario.outcome)
            return
        self.start_time = datetime.now(UTC)
        self.answered_at = time.monotonic()
        self._set_status("in-progress")
        self._callback("answered")
        while not self._hangup_requested:
            if twiml is None and url is not None:
                twiml = await self._fetch_twiml(url, self.method, "in-progress")
                if twiml is None:
                    break
            try:
                plan = parse_twiml(twiml or "")
            except TwimlError as exc:
                self.errors.append(str(exc))
                self._note(f"TwiML error: {exc}")
                break
            if plan.skipped:
                self._note(f"TwiML verbs not emulated: {', '.join(plan.skipped)}")
            if plan.stream is None:
                break
            reason = await self._run_stream(plan.stream)
            if reason != "redirect" or self._redirect is None:
                break
            (twiml, url), self._redirect = self._redirect, None
        self._finish("completed")

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` unless a cancel arrives first."""
        deadline = time.monotonic() + seconds
        while not self._cancel_requested and (left := deadline - time.monotonic()) > 0:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                break

    async def _run_stream(self, spec) -> str:
        emulator = self.emulator
        session = MediaSession(
            spec=spec,
            connect_url=emulator.route(spec.url),
            signature_url=emulator.stream_signature_url(spec.url),
            account_sid=self.account_sid,
            auth_token=emulator.accounts[self.account_sid],
            call_sid=self.sid,
            script=self.scenario.script,
            max_seconds=self.scenario.max_call_seconds,
            on_start=self._on_stream_start,
        )
        self.streams.append(session)
        if self._hangup_requested:  # hung up while the TwiML was being fetched
            session.request_stop("hangup")
        self._note(f"stream {session.stream_sid} connecting to {spec.url}")
        reason = await session.run()
        for turn in session.turns:
            latency = (
                "no reply"
                if turn.latency is None
                else f"first reply frame {turn.latency * 1000:.0f} ms later"
            )
            if turn.speech_end_at is not None:
                self.timeline.append(
                    (turn.speech_end_at, f"caller utterance {turn.index} ended; {latency}")
                )
        for mark in session.marks:
            how = "cleared" if mark.cleared else "played"
            when = (
                "never"
                if mark.echoed_at is None
                else f"{(mark.echoed_at - mark.received_at) * 1000:.0f} ms later"
            )
            self.timeline.append(
                (mark.received_at, f"mark {mark.name!r} received, echoed ({how}) {when}")
            )
        for clear in session.clears:
            self.timeline.append(
                (clear.at, f"clear: dropped {clear.dropped_s * 1000:.0f} ms, marks {clear.marks}")
            )
        for at, digit in session.dtmf_sent:
            self.timeline.append((at, f"dtmf {digit} sent"))
        for error in session.errors:
            self.errors.append(f"stream: {error}")
        self._note(f"stream ended: {reason} (received {len(session.received_audio)} media frames)")
        return reason

    def _on_stream_start(self) -> None:
        self._note("stream connected, sent connected + start")
        self.stream_started.set()

    async def _fetch_twiml(self, url: str, method: str, status: str) -> str | None:
        params = self._base_params(status)
        response = await self.emulator.signed_request(self.account_sid, url, method, params)
        if isinstance(response, str) or response.status_code >= 400:
            error = response if isinstance(response, str) else f"HTTP {response.status_code}"
            self.errors.append(f"TwiML fetch from {url} failed: {error}")
            self._note(f"TwiML fetch failed: {error}")
            return None
        return response.text

    def _finish(self, status: str) -> None:
        if self._over.is_set():
            return
        self.end_time = datetime.now(UTC)
        self._set_status(status)
        self._callback("completed")
        self._over.set()
        self._callbacks.put_nowait(None)  # the worker sets `ended` once delivered

    # ------------------------------------------------------------------ REST side (loop only)

    def _caller_hangup(self) -> None:
        self._request_end("caller-hangup")

    def _request_end(self, reason: str) -> None:
        if self.status in ("queued", "initiated", "ringing"):
            self._cancel_requested = True
            self._wake.set()
        else:
            self._hangup_requested = True
            if self.stream is not None:
                self.stream.request_stop(reason)

    async def update(
        self, status: str | None, twiml: str | None, url: str | None, method: str
    ) -> None:
        if status in ("completed", "canceled"):
            if status == "canceled" and self.status == "in-progress":
                return  # Twilio: canceling only affects queued or ringing calls
            self._note(f"REST update Status={status}")
            self._request_end("hangup")
            try:
                await asyncio.wait_for(self._over.wait(), 10)
            except TimeoutError:
                self.errors.append("call did not end within 10 s of a REST hang-up")
        elif twiml is not None or url is not None:
            self._note("REST update with new TwiML")
            if self.status == "in-progress":
                self._redirect = (twiml, url)
                if self.stream is not None:
                    self.stream.request_stop("redirect")
            else:
                self.twiml, self.url, self.method = twiml, url, method

    # ------------------------------------------------------------------ status callbacks

    def _base_params(self, status: str) -> dict[str, str]:
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": self.sid,
            "CallStatus": status,
            "Called": self.to,
            "Caller": self.from_,
            "Direction": self.direction,
            "From": self.from_,
            "To": self.to,
        }

    def _callback(self, event: str) -> None:
        if event not in self.status_callback_events:
            return
        params = self._base_params(self.status)
        params["CallbackSource"] = "call-progress-events"
        params["SequenceNumber"] = str(self._callback_seq)
        params["Timestamp"] = _rfc2822(datetime.now(UTC))
        if self.status in TERMINAL:
            params["CallDuration"] = str(self.duration or 0)
            params["SipResponseCode"] = SIP_CODES[self.status]
            if self.status == "completed":
                params["Duration"] = str(max(1, math.ceil((self.duration or 0) / 60)))
        self._callback_seq += 1
        self._callbacks.put_nowait((event, params))

    async def _deliver_callbacks(self) -> None:
        while (item := await self._callbacks.get()) is not None:
            event, params = item
            method = self.status_callback_method.upper()
            callback = Callback(event, self.status_callback, method, params, {}, time.monotonic())
            self.callbacks.append(callback)
            response = await self.emulator.signed_request(
                self.account_sid, self.status_callback, method, params, record=callback
            )
            if isinstance(response, str):
                callback.error = response
                self._note(f"callback {event} ({params['CallStatus']}) failed: {response}")
            else:
                callback.status_code = response.status_code
                self._note(
                    f"callback {event} ({params['CallStatus']}) -> HTTP {response.status_code}"
                )
        self.ended.set()


def signed_request_parts(
    auth_token: str, url: str, method: str, params: dict[str, str]
) -> tuple[str, dict[str, str], dict[str, str] | None]:
    """(URL to request, headers, form body) as Twilio sends a webhook: POST signs URL + sorted
    params; GET puts the params in the query string and signs the resulting URL."""
    if method.upper() == "GET":
        full = url + ("&" if "?" in url else "?") + urlencode(params)
        return full, {SIGNATURE_HEADER: twilio_signature(auth_token, full)}, None
    return url, {SIGNATURE_HEADER: twilio_signature(auth_token, url, params)}, params
