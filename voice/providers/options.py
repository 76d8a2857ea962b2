"""Every provider's options, declared once: type, bounds and role.

Roles say who sets an option and what it does to sharing:

* ``identity`` (tenant): which endpoint, model or voice; providers that differ in it are
  different instances (and cache entries).
* ``tuning`` (tenant): per-call behaviour; applied to a light view of a shared provider
  (``provider.tuned(**tuning)``), never a new model copy.
* ``operator``: server paths and process settings (model folders, threads), from the
  server's settings only.
* ``endpoint``: where a networked provider connects and with which credentials; filled
  in by the application from the operator's named endpoints, never from a tenant.

The application checks tenant options with :func:`check_options` before storing them;
the registry checks everything again before building a provider.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

IDENTITY, TUNING, OPERATOR, ENDPOINT = "identity", "tuning", "operator", "endpoint"
TENANT_ROLES = frozenset((IDENTITY, TUNING))
ALL_ROLES = frozenset((IDENTITY, TUNING, OPERATOR, ENDPOINT))


@dataclass(frozen=True)
class Option:
    type: type  # bool, int, float, str or dict
    role: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] = ()
    max_length: int = 200  # characters of a str, or of a dict as JSON
    pattern: str | None = None
    nullable: bool = False

    def clean(self, value: Any) -> Any:
        """The value, normalised (an int where a float is expected becomes a float);
        raises ValueError with a short message."""
        if value is None:
            if self.nullable:
                return None
            raise ValueError("must not be null")
        kind = self.type
        # bool is an int to Python, but not to JSON: true is no beam size.
        if kind is bool:
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("must be a whole number")
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError("must be a number")
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError("must be a finite number")
        elif kind is str:
            if not isinstance(value, str):
                raise ValueError("must be a string")
            if len(value) > self.max_length:
                raise ValueError(f"must be at most {self.max_length} characters")
            if self.pattern and not re.fullmatch(self.pattern, value):
                raise ValueError("has an invalid format")
        elif kind is dict:
            if not isinstance(value, dict):
                raise ValueError("must be an object")
            if len(json.dumps(value, default=str)) > self.max_length:
                raise ValueError(f"must be at most {self.max_length} characters as JSON")
        if self.choices and value not in self.choices:
            raise ValueError(f"must be one of: {', '.join(map(str, self.choices))}")
        if self.min is not None and value < self.min:
            raise ValueError(f"must be at least {self.min:g}")
        if self.max is not None and value > self.max:
            raise ValueError(f"must be at most {self.max:g}")
        return value


def _identity(kind: type, **bounds: Any) -> Option:
    return Option(kind, IDENTITY, **bounds)


def _tuning(kind: type, **bounds: Any) -> Option:
    return Option(kind, TUNING, **bounds)


def _operator(kind: type, **bounds: Any) -> Option:
    return Option(kind, OPERATOR, **bounds)


_PATH = _operator(str, max_length=1000, nullable=True)
#: What an OpenAI-compatible provider gets from the operator's named endpoint.
_NETWORKED = {
    "endpoint": _identity(str, max_length=64, pattern=r"[A-Za-z0-9][A-Za-z0-9_.-]*"),
    "base_url": Option(str, ENDPOINT, max_length=500),
    "api_key": Option(str, ENDPOINT, max_length=1000),
    "allow_private": Option(bool, ENDPOINT),
    "model": _tuning(str, max_length=100),
    "timeout": _tuning(float, min=1, max=120),
}

#: kind -> provider name -> option name -> Option.
SCHEMAS: dict[str, dict[str, dict[str, Option]]] = {
    "vad": {
        "silero": {
            "model_path": _PATH,
            "batch_delay_ms": _operator(float, min=0, max=100),
            "max_batch": _operator(int, min=1, max=1024),
        },
        "webrtc": {"mode": _tuning(int, min=0, max=3)},
    },
    "stt": {
        "faster-whisper": {
            "model_dir": _PATH,
            "cache_dir": _PATH,
            "model": _operator(str, max_length=100),
            "compute_type": _operator(
                str, choices=("int8", "int8_float32", "int16", "float32", "default")
            ),
            "cpu_threads": _operator(int, min=0, max=64),
            "beam_size": _tuning(int, min=1, max=5),
            "mode": _tuning(str, choices=("short", "standard")),
            "pad_ms": _tuning(int, min=0, max=2000),
            "short_max_seconds": _tuning(float, min=1, max=30),
            # Guards against decoding loops and text invented over silence (stt_whisper).
            "compression_ratio_threshold": _tuning(float, min=1, max=10),
            "log_prob_threshold": _tuning(float, min=-10, max=0),
            "no_speech_threshold": _tuning(float, min=0, max=1),
            "temperature_increment": _tuning(float, min=0, max=1),
            "trim_repeats": _tuning(bool),
            # Transcriptions at once, shared by every call (0: cores / cpu_threads).
            "workers": _operator(int, min=0, max=64),
        },
        "openai": {**_NETWORKED, "prompt": _tuning(str, max_length=1000)},
    },
    "brain": {
        "knowledge": {
            "model_dir": _PATH,
            "cache_size": _operator(int, min=1, max=100_000),
            # A tenant's regex could backtrack for ever in the shared worker: operator only.
            "goodbye_pattern": _operator(str, max_length=2000),
            "threshold": _tuning(float, min=0, max=1),
            "margin": _tuning(float, min=0, max=1),
            "floor": _tuning(float, min=0, max=1),
            "lead": _tuning(float, min=0, max=1),
        },
        "openai": {
            **_NETWORKED,
            "temperature": _tuning(float, min=0, max=2),
            "max_tokens": _tuning(int, min=1, max=4096),
            "tools": _tuning(bool),
            "extra_body": _tuning(dict, max_length=2000),
        },
    },
    "tts": {
        "piper": {
            "model_path": _PATH,
            "length_scale": _tuning(float, min=0.5, max=2, nullable=True),
            "speaker_id": _tuning(int, min=0, max=1000, nullable=True),
            "volume": _tuning(float, min=0, max=2),
        },
        "espeak": {
            "voice": _tuning(
                str, max_length=40, pattern=r"[a-z]{2,3}(-[a-z0-9]{1,8})*(\+[a-z0-9]{1,12})?"
            ),
            "rate": _tuning(int, min=80, max=450),
            "pitch": _tuning(int, min=0, max=99),
        },
        "openai": {
            **_NETWORKED,
            "voice": _tuning(str, max_length=64),
            "response_format": _tuning(str, choices=("wav", "pcm")),
            "sample_rate": _tuning(int, min=8000, max=48000),
            "speed": _tuning(float, min=0.25, max=4, nullable=True),
        },
    },
}


def schema(kind: str, name: str) -> dict[str, Option] | None:
    """The options of provider ``name`` of ``kind``; None for one without a schema (a
    provider registered at run time, e.g. a test fake: all its options build it)."""
    return SCHEMAS.get(kind, {}).get(name)


def is_networked(kind: str, name: str) -> bool:
    """Whether the provider connects to an operator's named endpoint."""
    return "endpoint" in (schema(kind, name) or {})


def check_options(
    kind: str, name: str, options: dict[str, Any], roles: frozenset[str] = TENANT_ROLES
) -> tuple[dict[str, Any], dict[str, str]]:
    """(the valid options, normalised; {option: why it is refused}).

    Options outside ``roles`` are refused ("set by the server operator") like unknown ones.
    """
    table = schema(kind, name)
    if table is None:
        return dict(options), {}
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for option, value in options.items():
        spec = table.get(option)
        if spec is None:
            known = ", ".join(sorted(o for o, s in table.items() if s.role in roles)) or "none"
            errors[option] = f"unknown option (allowed: {known})"
        elif spec.role not in roles:
            errors[option] = "set by the server operator, not per assistant" + (
                "; pick an endpoint by name" if spec.role == ENDPOINT else ""
            )
        else:
            try:
                cleaned[option] = spec.clean(value)
            except ValueError as exc:
                errors[option] = str(exc)
    return cleaned, errors


def split_options(
    kind: str, name: str, options: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(options that build the provider: identity, operator and endpoint ones; tuning
    options).  Raises ValueError naming the first bad option."""
    table = schema(kind, name)
    if table is None:
        return dict(options), {}
    cleaned, errors = check_options(kind, name, options, ALL_ROLES)
    if errors:
        option, why = next(iter(errors.items()))
        raise ValueError(f"option {option!r}: {why}")
    build = {k: v for k, v in cleaned.items() if table[k].role != TUNING}
    tuning = {k: v for k, v in cleaned.items() if table[k].role == TUNING}
    return build, tuning


def operator_options(raw: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Parse the operator's per-provider settings, a JSON object such as
    ``{"stt.faster-whisper": {"cpu_threads": 4}, "tts.piper": {"model_path": "..."}}``.

    Raises ValueError with a message that says what to fix.
    """
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ValueError("must be a JSON object") from None
    if not isinstance(data, dict):
        raise ValueError("must be a JSON object")
    parsed: dict[tuple[str, str], dict[str, Any]] = {}
    for key, options in data.items():
        kind, _, name = str(key).partition(".")
        table = schema(kind, name)
        if table is None:
            raise ValueError(f"{key!r}: not a provider (use KIND.NAME, e.g. 'stt.faster-whisper')")
        if not isinstance(options, dict):
            raise ValueError(f"{key!r}: must be an object of options")
        cleaned = {}
        for option, value in options.items():
            spec = table.get(option)
            if spec is None or spec.role != OPERATOR:
                hint = {
                    None: "unknown option",
                    ENDPOINT: "not an operator option here (endpoints come from VOICE_ENDPOINTS)",
                }.get(spec and spec.role, "not an operator option (assistants set it)")
                raise ValueError(f"{key}.{option}: {hint}")
            try:
                cleaned[option] = spec.clean(value)
            except ValueError as exc:
                raise ValueError(f"{key}.{option}: {exc}") from None
        parsed[(kind, name)] = cleaned
    return parsed
