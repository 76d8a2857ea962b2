"""Dependencies point one way: widgetsite -> apps -> voice; calls may use assistants and
widgets, nothing imports calls back; voice imports no app (and no Django: tests/voice)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ("accounts", "assistants", "widgets", "calls")
# Which project packages each package may import.
ALLOWED = {
    "voice": set(),
    "accounts": set(),
    "assistants": {"accounts"},
    "widgets": {"accounts", "assistants"},
    "calls": {"accounts", "assistants", "widgets", "voice"},
}


def project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & (set(APPS) | {"voice", "widgetsite"})


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package):
    offenders = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        if "migrations" in path.parts:
            continue
        wrong = project_imports(path) - ALLOWED[package] - {package}
        if wrong:
            offenders[str(path.relative_to(ROOT))] = sorted(wrong)
    assert offenders == {}, f"{package} imports what it must not: {offenders}"
