"""Text-to-speech over any OpenAI-compatible ``/audio/speech`` endpoint."""

from __future__ import annotations

import struct

from voice.audio import resample_pcm16
from voice.providers.base import ProviderError, Tunable
from voice.providers.openai_http import DEFAULT_BASE_URL, OpenAiEndpoint


def wav_to_pcm16(data: bytes) -> tuple[bytes, int]:
    """(PCM16 mono bytes, sample rate) from a WAV file; tolerates streamed headers whose
    sizes are unknown (0xFFFFFFFF)."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ProviderError("speech endpoint did not return a WAV file")
    pos, rate, channels, bits = 12, 0, 1, 16
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = pos + 8
        if chunk == b"fmt ":
            _fmt, channels, rate = struct.unpack("<HHI", data[body : body + 8])
            bits = struct.unpack("<H", data[body + 14 : body + 16])[0]
        elif chunk == b"data":
            pcm = data[body : body + size] if size != 0xFFFFFFFF else data[body:]
            if bits != 16:
                raise ProviderError(f"unsupported WAV sample width {bits} bits")
            if channels > 1:
                import numpy as np

                frames = np.frombuffer(pcm[: len(pcm) // (2 * channels) * 2 * channels], "<i2")
                pcm = frames.reshape(-1, channels).mean(axis=1).astype("<i2").tobytes()
            return pcm[: len(pcm) // 2 * 2], rate
        pos = body + size + (size & 1)
    raise ProviderError("WAV file without a data chunk")


class OpenAiTts(Tunable):
    """The endpoint (``base_url``, ``api_key``, ``allow_private``, named ``endpoint``) is
    the operator's; tuning: ``model`` (``tts-1``), ``voice`` (``alloy``),
    ``response_format`` (``wav`` or ``pcm``), ``sample_rate`` (of ``pcm``: 24000),
    ``speed``, ``timeout``."""

    TUNING = ("model", "voice", "response_format", "sample_rate", "speed", "timeout")

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str = "",
        allow_private: bool = False,
        endpoint: str = "",
        model: str = "tts-1",
        voice: str = "alloy",
        response_format: str = "wav",
        sample_rate: int = 24000,
        speed: float | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.endpoint = OpenAiEndpoint(
            base_url, api_key, allow_private=allow_private, name=endpoint, service="speech service"
        )
        self.timeout = float(timeout)
        self.model, self.voice = model, voice
        self.response_format, self.sample_rate, self.speed = response_format, sample_rate, speed

    async def synthesize(self, text: str) -> bytes:
        body: dict[str, object] = {
            "model": self.model,
            "input": text,
            "voice": self.voice,
            "response_format": self.response_format,
        }
        if self.speed is not None:
            body["speed"] = self.speed
        try:
            async with self.endpoint.client(self.timeout) as client:
                response = await client.post(self.endpoint.url("audio/speech"), json=body)
        except Exception as exc:
            raise self.endpoint.transport_error(exc) from None
        if response.status_code != 200:
            raise self.endpoint.http_error(response.status_code)
        if self.response_format == "pcm":
            pcm, rate = response.content, self.sample_rate
        else:
            pcm, rate = wav_to_pcm16(response.content)
        return resample_pcm16(pcm[: len(pcm) // 2 * 2], rate)
