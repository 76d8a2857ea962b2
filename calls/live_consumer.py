"""The live transcript socket, `/ws/calls/{id}`: a read-only subscription to one call's events.

Authenticated by `?api_key=KEY` (a key of the call's organization with `calls:read`), by
`?session_token=TOKEN` from `GET /v1/calls/{id}/live`, or by that token as the
`Sec-WebSocket-Protocol` value (echoed on accept, as browsers require). It joins the call's
event group first, then reads the call's events from the database and sends them all in
`connected`; what the group delivers afterwards is de-duplicated by event `seq` (and a gap is
filled from the database), so a late subscriber misses nothing. After `call.ended` it sends
the update and closes 1000. Messages and close codes: `calls.protocol`, README.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from calls import live
from calls.consumers import RATE_BURST, RATE_PER_SECOND, TokenBucket
from calls.events import call_group
from calls.protocol import (
    MAX_BINARY_BYTES,
    MAX_TEXT_BYTES,
    ClientMessage,
    CloseCode,
    LiveMessage,
    ProtocolError,
    decode_client_message,
    text_too_big,
)
from calls.vocabulary import TERMINAL_STATUSES, EventType

logger = logging.getLogger(__name__)

READ_ONLY_TEXT = 'This socket is read-only: the only message it takes is {"type": "ping"}.'


class LiveCallConsumer(AsyncWebsocketConsumer):
    call_id = ""
    group = ""
    last_seq = 0
    closing = False

    async def connect(self) -> None:
        self.bucket = TokenBucket(RATE_PER_SECOND, RATE_BURST)
        self.call_id = str(self.scope["url_route"]["kwargs"].get("call_id", ""))
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        api_key = (query.get("api_key") or [""])[0]
        token = (query.get("session_token") or [""])[0]
        offered = self.scope.get("subprotocols") or []
        subprotocol = None
        if not (api_key or token) and offered:
            # A browser cannot set headers: the token travels as the subprotocol, and the
            # handshake only succeeds when the server names it back.
            token = subprotocol = offered[0]
        # Accept first: a refusal before accepting reaches the client as a bare 403.
        await self.accept(subprotocol=subprotocol)
        try:
            await database_sync_to_async(live.live_authorize)(
                call_id=self.call_id, api_key=api_key, session_token=token
            )
        except live.LiveRefused as refused:
            await self.refuse(refused.code, refused.reason)
            return
        # Subscribe BEFORE reading the rows: an event committed in between arrives through
        # the group too (handled after connect returns) and is dropped by its seq.
        self.group = call_group(self.call_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        status, events = await database_sync_to_async(live.call_snapshot)(call_id=self.call_id)
        self.last_seq = max((e["seq"] for e in events), default=0)
        await self.send_json(
            live.connected_message(call_id=self.call_id, status=status, events=events)
        )
        if any(e["type"] == EventType.CALL_ENDED for e in events) or status in TERMINAL_STATUSES:
            await self.finish()

    async def refuse(self, code: CloseCode, reason: str) -> None:
        """Close with a code; the reason goes first as an `error` message (daphne drops it)."""
        if self.closing:
            return
        self.closing = True
        with contextlib.suppress(Exception):
            await self.send(
                text_data=json.dumps(
                    {"type": LiveMessage.ERROR, "code": int(code), "error": reason}
                )
            )
        await self.close(code=int(code), reason=reason)

    async def finish(self) -> None:
        """The call has ended and the subscriber has everything: close normally."""
        if not self.closing:
            self.closing = True
            await self.close(code=int(CloseCode.NORMAL))

    async def disconnect(self, code) -> None:
        self.closing = True
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    # --- from the client: ping, nothing else ---

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if self.closing:
            return
        if not self.bucket.take():
            await self.refuse(CloseCode.FLOODING, "Too many messages.")
            return
        if text_data is None:
            if bytes_data is not None and len(bytes_data) > MAX_BINARY_BYTES:
                await self.refuse(
                    CloseCode.TOO_BIG, f"Binary messages are at most {MAX_BINARY_BYTES} bytes."
                )
            else:
                await self.send_error(READ_ONLY_TEXT)
            return
        if text_too_big(text_data):
            await self.refuse(
                CloseCode.TOO_BIG, f"Text messages are at most {MAX_TEXT_BYTES} bytes (UTF-8)."
            )
            return
        try:
            kind, _ = decode_client_message(text_data)
        except ProtocolError as refused:
            await self.send_error(str(refused))
            return
        if kind == ClientMessage.PING:
            await self.send_json({"type": LiveMessage.PONG})
        else:
            await self.send_error(READ_ONLY_TEXT)

    async def send_error(self, text: str) -> None:
        await self.send_json({"type": LiveMessage.ERROR, "error": text})

    # --- from the call's group ---

    async def call_event(self, message: dict[str, Any]) -> None:
        if self.closing:
            return
        event = message.get("event") or {}
        seq = event.get("seq")
        if not isinstance(seq, int) or seq <= self.last_seq:
            return  # already in `connected`, or delivered
        if seq == self.last_seq + 1:
            events = [event]
        else:  # a publish was lost (it is best effort): the rows have it
            events = await database_sync_to_async(live.events_after)(
                call_id=self.call_id, seq=self.last_seq
            )
        for item in events:
            if item["seq"] <= self.last_seq:
                continue
            self.last_seq = item["seq"]
            update = live.update_for(item)
            if update is not None:
                await self.send_json(update)
            if item["type"] == EventType.CALL_ENDED:
                await self.finish()
                return

    async def send_json(self, data: dict) -> None:
        if not self.closing:
            await self.send(text_data=json.dumps(data))
