"""docs/ARCHITECTURE.md's rule, checked: each layer imports only the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: a package -> the oob packages it must never import (they sit above it)
FORBIDDEN = {
    "oob.drivers": ("oob.runbook", "oob.cli", "oob.render", "oob.dump", "oob.preflight", "oob.api"),
    "oob.inventory": ("oob.runbook", "oob.cli", "oob.render", "oob.drivers", "oob.dump", "oob.api"),
    "oob.dump": ("oob.runbook", "oob.cli", "oob.render", "oob.drivers", "oob.api"),
    # pure: only the dump formats (what a vmcore's first bytes say) from the dump layer
    "oob.analysis": (
        "oob.runbook",
        "oob.cli",
        "oob.render",
        "oob.drivers",
        "oob.api",
        "oob.dump.watcher",
        "oob.dump.targets",
        "oob.dump.reading",
        "oob.ssh",
    ),
    "oob.preflight": ("oob.runbook", "oob.cli", "oob.render", "oob.api"),
    "oob.runbook": ("oob.cli", "oob.render", "oob.api"),
    "oob.signals": ("oob.runbook", "oob.cli", "oob.render", "oob.api"),
    "oob.render": ("oob.cli", "oob.api"),
    "mocks": ("oob.cli", "oob.runbook", "oob.render", "oob.api"),
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_layer_never_imports_a_layer_above_it(package: str) -> None:
    folder = REPO.joinpath(*package.split("."))
    files = sorted(folder.rglob("*.py"))
    assert files, package
    wrong = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in files
        for name in sorted(_imports(path))
        if any(name == above or name.startswith(above + ".") for above in FORBIDDEN[package])
    ]
    assert not wrong, "\n".join(wrong)
