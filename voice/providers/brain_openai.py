"""Replies from any OpenAI-compatible chat completions endpoint, streamed, with an
``end_call`` tool the model calls to hang up."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from voice.providers.base import BrainRequest, ProviderError, ReplyPart, Tunable
from voice.providers.openai_http import DEFAULT_BASE_URL, OpenAiEndpoint
from voice.text import substitute

log = logging.getLogger(__name__)

END_CALL_TOOL = {
    "type": "function",
    "function": {
        "name": "end_call",
        "description": "End the phone call, after saying goodbye, when the user wants to "
        "finish or the conversation is complete.",
        "parameters": {"type": "object", "properties": {}},
    },
}

VOICE_HINT = (
    "You are speaking on a voice call: answer in short, plain spoken sentences, "
    "no lists, no markdown."
)


class OpenAiBrain(Tunable):
    """The endpoint (``base_url``, ``api_key``, ``allow_private``, named ``endpoint``) is
    the operator's; tuning: ``model``, ``temperature``, ``max_tokens``, ``timeout``,
    ``tools`` (False leaves out ``end_call``), ``extra_body`` (extra request fields, e.g.
    Ollama options; they never replace the model, messages, stream or tools)."""

    speculative = False  # costs money and may have side effects: wait for the endpoint
    TUNING = ("model", "temperature", "max_tokens", "timeout", "tools", "extra_body")

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str = "",
        allow_private: bool = False,
        endpoint: str = "",
        model: str = "gpt-4o-mini",
        temperature: float = 0.4,
        max_tokens: int = 300,
        timeout: float = 20.0,
        tools: bool = True,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        self.endpoint = OpenAiEndpoint(
            base_url, api_key, allow_private=allow_private, name=endpoint, service="chat service"
        )
        self.timeout = float(timeout)
        self.model, self.temperature, self.max_tokens = model, temperature, max_tokens
        self.tools = tools
        self.extra_body = dict(extra_body or {})

    def messages(self, request: BrainRequest) -> list[dict[str, str]]:
        system = substitute(request.system_prompt, request.variables).strip()
        if request.variables:
            facts = "\n".join(f"- {k}: {v}" for k, v in request.variables.items())
            system += f"\n\nCall details:\n{facts}"
        system = f"{system}\n\n{VOICE_HINT}".strip()
        return [
            {"role": "system", "content": system},
            *request.history,
            {"role": "user", "content": request.user_text},
        ]

    def body(self, request: BrainRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            **(self.extra_body or {}),
            # Set last: extra fields tune the request, they do not replace what it is.
            "model": self.model,
            "messages": self.messages(request),
            "stream": True,
        }
        body.pop("tools", None)
        if self.tools:
            body["tools"] = [END_CALL_TOOL]
        return body

    async def reply(self, request: BrainRequest) -> AsyncIterator[ReplyPart]:
        said_something = False
        end_call = False
        try:
            async with self.endpoint.client(self.timeout) as client:
                async with client.stream(
                    "POST", self.endpoint.url("chat/completions"), json=self.body(request)
                ) as response:
                    if response.status_code != 200:
                        raise self.endpoint.http_error(response.status_code)
                    async for line in response.aiter_lines():
                        delta = _parse_delta(line, self.endpoint)
                        if delta is None:
                            continue
                        if delta == "[DONE]":
                            break
                        text, calls_end = delta
                        end_call = end_call or calls_end
                        if text:
                            said_something = True
                            yield ReplyPart(text)
        except ProviderError:
            raise
        except Exception as exc:
            raise self.endpoint.transport_error(exc) from None
        if end_call:
            goodbye = (
                "" if said_something else substitute(request.goodbye_message, request.variables)
            )
            yield ReplyPart(goodbye, end_call=True)


def _parse_delta(line: str, endpoint: OpenAiEndpoint) -> tuple[str, bool] | str | None:
    """One server-sent-events line -> (text, end_call requested), "[DONE]" or None."""
    line = line.strip()
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if payload == "[DONE]":
        return "[DONE]"
    try:
        chunk = json.loads(payload)
    except ValueError:
        return None
    if isinstance(chunk, dict) and chunk.get("error"):
        # The remote message stays out of the caller's view (and the log: it is theirs).
        log.warning("%s endpoint %r sent an error in the stream", endpoint.service, endpoint.name)
        raise ProviderError(f"The {endpoint.service} returned an error.")
    text, end_call = "", False
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        text += delta.get("content") or ""
        for call in delta.get("tool_calls") or []:
            if (call.get("function") or {}).get("name") == "end_call":
                end_call = True
    return text, end_call
