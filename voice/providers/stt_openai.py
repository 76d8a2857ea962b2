"""Speech-to-text over any OpenAI-compatible ``/audio/transcriptions`` endpoint."""

from __future__ import annotations

import io
import wave

from voice.providers.openai_http import (
    DEFAULT_BASE_URL,
    OpenAiEndpoint,
    http_error,
    transport_error,
)


def pcm_to_wav(pcm: bytes, rate: int = 16000) -> bytes:
    """Wrap PCM16 mono in a WAV container."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


class OpenAiStt:
    """Options: ``base_url``, ``api_key``, ``model`` (default ``whisper-1``), ``timeout``,
    ``prompt`` (vocabulary hints)."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str = "",
        model: str = "whisper-1",
        timeout: float = 15.0,
        prompt: str = "",
    ) -> None:
        self.endpoint = OpenAiEndpoint(base_url, api_key, timeout)
        self.model = model
        self.prompt = prompt

    async def transcribe(self, pcm: bytes, language: str) -> str:
        data = {"model": self.model, "response_format": "json"}
        if language:
            data["language"] = language
        if self.prompt:
            data["prompt"] = self.prompt
        files = {"file": ("speech.wav", pcm_to_wav(pcm), "audio/wav")}
        try:
            async with self.endpoint.client() as client:
                response = await client.post(
                    self.endpoint.url("audio/transcriptions"), data=data, files=files
                )
        except Exception as exc:
            raise transport_error("transcription", exc) from exc
        if response.status_code != 200:
            raise http_error("transcription", response.status_code, response.content)
        try:
            return str(response.json().get("text", "")).strip()
        except ValueError:
            return response.text.strip()
