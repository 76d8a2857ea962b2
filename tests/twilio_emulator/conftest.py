"""Fixtures for the Twilio emulator's tests: the emulator, the SDK pointed at it, a status
callback receiver and a small Media Streams server (plain threads, no Django)."""

from __future__ import annotations

import pytest
from twilio.rest import Client

from tests.twilio_emulator.helpers import ACCOUNT_SID, AUTH_TOKEN, Receiver, StreamServer
from twilio_emulator import Scenario, TwilioEmulator


@pytest.fixture
def emulator():
    emu = TwilioEmulator({ACCOUNT_SID: AUTH_TOKEN}, default_scenario=Scenario(ring_seconds=0.05))
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def client(emulator) -> Client:
    return Client(ACCOUNT_SID, AUTH_TOKEN, http_client=emulator.http_client())


@pytest.fixture
def receiver():
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture
def stream_server():
    servers: list[StreamServer] = []

    def make(behaviour=None, reject: bool = False) -> StreamServer:
        server = StreamServer(behaviour, reject)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()
