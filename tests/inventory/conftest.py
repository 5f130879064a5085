"""Fixtures for the inventory tests: write inventory files, load them, catch their one-line errors."""

from __future__ import annotations

import builtins
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from oob.errors import InventoryError
from oob.inventory import Inventory, load_inventory

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "inventories"


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """write("a.toml", text, mode=0o600) -> path; the text is dedented."""

    def write(name: str, text: str, mode: int = 0o600) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        path.chmod(mode)
        return path

    return write


@pytest.fixture
def load(write: Callable[..., Path]) -> Callable[..., Inventory]:
    """load("a.toml", text) -> Inventory of that one file."""

    def load(name: str, text: str, mode: int = 0o600) -> Inventory:
        return load_inventory([write(name, text, mode)])

    return load


@pytest.fixture
def load_error(write: Callable[..., Path]) -> Callable[..., tuple[Path, str]]:
    """load_error("a.toml", text) -> (path, message); the message must be a single line."""

    def load_error(name: str, text: str, mode: int = 0o600) -> tuple[Path, str]:
        path = write(name, text, mode)
        with pytest.raises(InventoryError) as info:
            load_inventory([path])
        message = str(info.value)
        assert "\n" not in message
        assert info.value.exit_code == 2
        return path, message

    return load_error


@pytest.fixture
def deny_read(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """Make open() of one path fail with EACCES (the tests may run as root, who reads anything)."""
    real_open = builtins.open
    denied: set[str] = set()

    def fake_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file) in denied:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    return lambda path: denied.add(str(path))
