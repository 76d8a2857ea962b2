"""Speech-to-text over any OpenAI-compatible ``/audio/transcriptions`` endpoint."""

from __future__ import annotations

import io
import wave

from voice.providers.base import Tunable
from voice.providers.openai_http import DEFAULT_BASE_URL, OpenAiEndpoint


def pcm_to_wav(pcm: bytes, rate: int = 16000) -> bytes:
    """Wrap PCM16 mono in a WAV container."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


class OpenAiStt(Tunable):
    """The endpoint (``base_url``, ``api_key``, ``allow_private``, named ``endpoint``) is
    the operator's; ``model`` (default ``whisper-1``), ``timeout`` and ``prompt``
    (vocabulary hints) are tuning."""

    TUNING = ("model", "timeout", "prompt")

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str = "",
        allow_private: bool = False,
        endpoint: str = "",
        model: str = "whisper-1",
        timeout: float = 15.0,
        prompt: str = "",
    ) -> None:
        self.endpoint = OpenAiEndpoint(
            base_url,
            api_key,
            allow_private=allow_private,
            name=endpoint,
            service="transcription service",
        )
        self.model, self.timeout, self.prompt = model, float(timeout), prompt

    async def transcribe(self, pcm: bytes, language: str) -> str:
        data = {"model": self.model, "response_format": "json"}
        if language:
            data["language"] = language
        if self.prompt:
            data["prompt"] = self.prompt
        files = {"file": ("speech.wav", pcm_to_wav(pcm), "audio/wav")}
        try:
            async with self.endpoint.client(self.timeout) as client:
                response = await client.post(
                    self.endpoint.url("audio/transcriptions"), data=data, files=files
                )
        except Exception as exc:
            raise self.endpoint.transport_error(exc) from None
        if response.status_code != 200:
            raise self.endpoint.http_error(response.status_code)
        try:
            return str(response.json().get("text", "")).strip()
        except ValueError:
            return response.text.strip()
