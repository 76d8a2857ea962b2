"""Dependencies point one way: widgetsite -> apps -> voice -> netguard; calls may use
assistants and widgets, nothing imports calls back; voice imports no app (and no Django:
tests/voice); netguard imports nothing of the project and no framework."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = ("accounts", "assistants", "widgets", "calls", "jobs", "webhooks", "telephony")
# Which project packages each package may import. netguard (the outbound URL guard) is the
# bottom: framework-free, it imports nothing of the project, and everyone may use it.
# assistants reads the speech providers' option schemas from voice.
ALLOWED = {
    "netguard": set(),
    "voice": {"netguard"},
    "accounts": {"netguard"},
    "assistants": {"accounts", "voice", "netguard"},
    "widgets": {"accounts", "assistants", "netguard"},
    "calls": {"accounts", "assistants", "widgets", "voice", "netguard", "jobs"},
    # jobs is the seam over the queue; webhooks subscribe to call events (calls never
    # imports webhooks).
    "jobs": set(),
    "webhooks": {"accounts", "calls", "jobs", "netguard"},
    # telephony places and answers phone calls through calls' services and reacts to call
    # events (calls never imports telephony); its media stream feeds the voice engine; its
    # `phone_demo` command uses the demo organization that widgets' `demo_setup` makes.
    "telephony": {"accounts", "assistants", "calls", "jobs", "netguard", "voice", "widgets"},
}
FRAMEWORKS = {"django", "rest_framework", "channels", "daphne"}


def project_imports(path: Path) -> set[str]:
    return all_imports(path) & (set(APPS) | {"voice", "widgetsite", "netguard"})


def all_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


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


def test_netguard_is_framework_free():
    offenders = {
        str(path.relative_to(ROOT)): sorted(all_imports(path) & FRAMEWORKS)
        for path in sorted((ROOT / "netguard").rglob("*.py"))
        if all_imports(path) & FRAMEWORKS
    }
    assert offenders == {}, f"netguard imports a framework: {offenders}"
