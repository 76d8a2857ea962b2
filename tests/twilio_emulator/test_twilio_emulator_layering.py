"""The emulator stands apart from the product: no framework, no project package."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "django", "rest_framework", "channels", "daphne",  # frameworks
    "accounts", "assistants", "widgets", "calls", "jobs", "webhooks", "voice", "widgetsite",
    "netguard", "telephony",  # the product
}  # fmt: skip


def test_twilio_emulator_imports_no_framework_and_nothing_of_the_product():
    offenders = {}
    for path in sorted((ROOT / "twilio_emulator").rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        if names & FORBIDDEN:
            offenders[path.name] = sorted(names & FORBIDDEN)
    assert offenders == {}
